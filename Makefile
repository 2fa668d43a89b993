# cnnc — a code-generating model compiler for small CNNs.
#   make train   install what is missing, build, train mnist14k
#   make test    every test suite, the bad-input corpus, sanitizer builds
# See README.md for the rest (bench, plot, firmware-test, data, generate).

CC      ?= gcc
BUILD   := build
WARN    := -Wall -Wextra -Wpedantic -Werror
OPT     ?= -O2
# MARCH=native builds for this CPU; the default stays portable.
MARCH   ?=
ARCHFLAGS := $(if $(MARCH),-march=$(MARCH),)
CFLAGS  := -std=c11 $(OPT) $(ARCHFLAGS) -g $(WARN) -D_POSIX_C_SOURCE=200809L
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
BLAS_CFLAGS := -I/usr/include/x86_64-linux-gnu/openblas-pthread
BLAS_LIBS   := -lopenblas
OMP     := -fopenmp
LIBS    := $(BLAS_LIBS) -lz -lm

MODEL   ?= mnist14k
# Where MNIST is: MNIST_DIR, else ../shared/data/mnist, else data/mnist.
MNIST_DIR ?= $(firstword $(wildcard ../shared/data/mnist) data/mnist)
export MNIST_DIR

.PHONY: all deps test train bench plot firmware-test data generate clean check-generated
.DELETE_ON_ERROR:

all: $(BUILD)/cnnc $(BUILD)/libcnnrt.a

deps:
	@bash .ci/deps

# ----------------------------------------------------------------- runtime
RUNTIME_SRC := $(wildcard runtime/*.c)
RUNTIME_OBJ := $(RUNTIME_SRC:runtime/%.c=$(BUILD)/runtime/%.o)

$(BUILD)/runtime/%.o: runtime/%.c $(wildcard runtime/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(BLAS_CFLAGS) -Iruntime -c $< -o $@

$(BUILD)/libcnnrt.a: $(RUNTIME_OBJ)
	@mkdir -p $(@D)
	ar rcs $@ $^

# ---------------------------------------------------------------- compiler
COMPILER_SRC := $(filter-out compiler/main.c,$(wildcard compiler/*.c))
COMPILER_OBJ := $(COMPILER_SRC:compiler/%.c=$(BUILD)/compiler/%.o) \
                $(BUILD)/compiler/lexer.o $(BUILD)/compiler/parser.o
COMPILER_INC := -Icompiler -I$(BUILD)/compiler -Iruntime

$(BUILD)/compiler/parser.c $(BUILD)/compiler/parser.h: compiler/parser.y
	@mkdir -p $(@D)
	bison -Wall -Werror --defines=$(BUILD)/compiler/parser.h -o $(BUILD)/compiler/parser.c $<

$(BUILD)/compiler/lexer.c $(BUILD)/compiler/lexer.h: compiler/lexer.l
	@mkdir -p $(@D)
	flex --header-file=$(BUILD)/compiler/lexer.h -o $(BUILD)/compiler/lexer.c $<

# flex and bison output is not -Wpedantic clean; it is still -Werror.
$(BUILD)/compiler/lexer.o $(BUILD)/compiler/parser.o: %.o: %.c $(BUILD)/compiler/parser.h $(BUILD)/compiler/lexer.h
	$(CC) -std=c11 $(OPT) -g -Wall -Werror -Wno-unused-function -D_POSIX_C_SOURCE=200809L $(COMPILER_INC) -c $< -o $@

$(BUILD)/compiler/%.o: compiler/%.c $(wildcard compiler/*.h) $(BUILD)/compiler/parser.h $(BUILD)/compiler/lexer.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(COMPILER_INC) -c $< -o $@

$(BUILD)/libcnnc.a: $(COMPILER_OBJ)
	ar rcs $@ $^

$(BUILD)/cnnc: compiler/main.c $(BUILD)/libcnnc.a $(BUILD)/libcnnrt.a
	$(CC) $(CFLAGS) $(COMPILER_INC) $< $(BUILD)/libcnnc.a $(BUILD)/libcnnrt.a $(LIBS) -o $@

# cnnc built with AddressSanitizer and UBSan, for the bad-input corpus.
$(BUILD)/san/cnnc: compiler/main.c $(COMPILER_SRC) $(RUNTIME_SRC) $(BUILD)/compiler/lexer.c $(BUILD)/compiler/parser.c $(wildcard compiler/*.h runtime/*.h)
	@mkdir -p $(@D)
	$(CC) -std=c11 -O1 -g -Wall -Werror -Wno-unused-function -D_POSIX_C_SOURCE=200809L $(SAN) $(COMPILER_INC) $(BLAS_CFLAGS) \
	  compiler/main.c $(COMPILER_SRC) $(RUNTIME_SRC) $(BUILD)/compiler/lexer.c $(BUILD)/compiler/parser.c $(LIBS) -o $@

# --------------------------------------------------------- generated code
GEN_DIR := generated/$(MODEL)
GEN_FLAGS := $(CFLAGS) $(OMP) $(BLAS_CFLAGS) -Iruntime -I$(GEN_DIR)

# The committed generated code, rebuilt from the model when cnnc changes.
generate: $(BUILD)/cnnc
	$(BUILD)/cnnc build models/$(MODEL).cnn -o $(GEN_DIR)/

# Fails when generated/ is not what the current compiler emits.
check-generated: $(BUILD)/cnnc
	@rm -rf $(BUILD)/regen && mkdir -p $(BUILD)/regen
	$(BUILD)/cnnc build models/mnist14k.cnn -o $(BUILD)/regen/mnist14k/
	diff -r -x '*_infer.*' generated/mnist14k $(BUILD)/regen/mnist14k

$(BUILD)/$(MODEL)_train.o: $(GEN_DIR)/$(MODEL)_train.c $(GEN_DIR)/$(MODEL)_train.h runtime/cnn_net.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(OMP) $(BLAS_CFLAGS) -Iruntime -c $< -o $@

# ----------------------------------------------------------------- trainer
$(BUILD)/$(MODEL)-train: examples/train.c $(BUILD)/$(MODEL)_train.o $(BUILD)/libcnnrt.a
	$(CC) $(CFLAGS) $(OMP) $(BLAS_CFLAGS) -Iruntime -I$(GEN_DIR) -DNET_HEADER='"$(MODEL)_train.h"' -DNET=$(MODEL)_net \
	  $< $(BUILD)/$(MODEL)_train.o $(BUILD)/libcnnrt.a $(LIBS) $(OMP) -o $@

train: deps
	$(MAKE) $(BUILD)/$(MODEL)-train
	$(BUILD)/$(MODEL)-train --data $(MNIST_DIR) --save $(BUILD)/$(MODEL).ckpt --log-csv $(BUILD)/$(MODEL).csv

# ------------------------------------------------------------------- tests
# Each tests/test_*.c is one CUnit suite linked with tests/cu_main.c.
TEST_CFLAGS := -std=c11 -O1 -g $(WARN) -D_POSIX_C_SOURCE=200809L $(SAN) $(OMP) $(COMPILER_INC) $(BLAS_CFLAGS) -Itests
TEST_LIBS   := -lcunit $(LIBS) $(OMP)
TESTS       :=

test: deps all
	$(MAKE) test-build
	bash tests/run.sh $(TESTS)

test-build: $(TESTS)

clean:
	rm -rf $(BUILD)
