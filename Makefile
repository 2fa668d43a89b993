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
LIBS    := $(BLAS_LIBS) -lcjson -lz -lm

MODEL   ?= mnist14k
# Where MNIST is: MNIST_DIR, else ../shared/data/mnist, else data/mnist.
MNIST_DIR ?= $(firstword $(wildcard ../shared/data/mnist) data/mnist)
export MNIST_DIR

.PHONY: all deps deps-test test train bench profile plot firmware-test data generate clean check-generated FORCE
.DELETE_ON_ERROR:

all: $(BUILD)/cnnc $(BUILD)/libcnnrt.a

deps:
	@bash .ci/deps

deps-test:
	@bash .ci/deps test

# MNIST into data/mnist from a public mirror, checked against .ci/mnist.sha256.
data:
	@bash .ci/deps data
	bash .ci/fetch-mnist data/mnist

# The flags the objects were built with: `make MARCH=native ...` after a
# default build (or the other way round) rebuilds what the flags change.
FLAGS_STAMP := $(BUILD)/cflags
$(FLAGS_STAMP): FORCE | deps
	@mkdir -p $(@D)
	@echo '$(CC) $(CFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS)' > $@
FORCE:

# ----------------------------------------------------------------- runtime
RUNTIME_SRC := $(wildcard runtime/*.c)
RUNTIME_OBJ := $(RUNTIME_SRC:runtime/%.c=$(BUILD)/runtime/%.o)

$(BUILD)/runtime/%.o: runtime/%.c $(wildcard runtime/*.h) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(RT_OMP) $(BLAS_CFLAGS) -Iruntime -c $< -o $@
# Only the dataset (parallel augmentation) uses OpenMP; cnnc links the rest.
$(BUILD)/runtime/dataset.o: RT_OMP := $(OMP)

$(BUILD)/libcnnrt.a: $(RUNTIME_OBJ)
	@mkdir -p $(@D)
	ar rcs $@ $^

# ---------------------------------------------------------------- compiler
COMPILER_SRC := $(filter-out compiler/main.c,$(wildcard compiler/*.c))
COMPILER_OBJ := $(COMPILER_SRC:compiler/%.c=$(BUILD)/compiler/%.o) \
                $(BUILD)/compiler/lexer.o $(BUILD)/compiler/parser.o
COMPILER_INC := -Icompiler -I$(BUILD)/compiler -Iruntime

# (| deps: a fresh machine gets flex, bison and the libraries before the first compile.)
$(BUILD)/compiler/parser.c $(BUILD)/compiler/parser.h: compiler/parser.y | deps
	@mkdir -p $(@D)
	bison -Wall -Werror --defines=$(BUILD)/compiler/parser.h -o $(BUILD)/compiler/parser.c $<

$(BUILD)/compiler/lexer.c $(BUILD)/compiler/lexer.h: compiler/lexer.l | deps
	@mkdir -p $(@D)
	flex --header-file=$(BUILD)/compiler/lexer.h -o $(BUILD)/compiler/lexer.c $<

# flex and bison output is not -Wpedantic clean; it is still -Werror.
$(BUILD)/compiler/lexer.o $(BUILD)/compiler/parser.o: %.o: %.c $(BUILD)/compiler/parser.h $(BUILD)/compiler/lexer.h
	$(CC) -std=c11 $(OPT) -g -Wall -Werror -Wno-unused-function -D_POSIX_C_SOURCE=200809L $(COMPILER_INC) -c $< -o $@

$(BUILD)/compiler/%.o: compiler/%.c $(wildcard compiler/*.h runtime/*.h) $(BUILD)/compiler/parser.h $(BUILD)/compiler/lexer.h
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
	$(BUILD)/cnnc export models/$(MODEL).cnn --pytorch -o $(GEN_DIR)/

# Fails when generated/ is not what the current compiler emits.
# Every committed generated/NAME/ is regenerated from models/NAME.cnn.
check-generated: $(BUILD)/cnnc
	@rm -rf $(BUILD)/regen && mkdir -p $(BUILD)/regen
	@for d in generated/*/; do m=$$(basename $$d); \
	  $(BUILD)/cnnc build models/$$m.cnn -o $(BUILD)/regen/$$m/ && \
	  $(BUILD)/cnnc export models/$$m.cnn --pytorch -o $(BUILD)/regen/$$m/ && \
	  diff -r -x '*_infer*' generated/$$m $(BUILD)/regen/$$m || exit 1; done
	@echo "check-generated: generated/ is what the compiler emits"

# A model edited after its code was generated is generated again. (The
# tests compare generated/ with the compiler's output before anything here
# can rewrite it.)
$(GEN_DIR)/$(MODEL)_train.c $(GEN_DIR)/$(MODEL)_train.h &: models/$(MODEL).cnn $(BUILD)/cnnc
	$(BUILD)/cnnc build $< -o $(GEN_DIR)/

$(BUILD)/$(MODEL)_train.o: $(GEN_DIR)/$(MODEL)_train.c $(GEN_DIR)/$(MODEL)_train.h runtime/cnn_net.h $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(OMP) $(BLAS_CFLAGS) -Iruntime -c $< -o $@

# ----------------------------------------------------------------- trainer
$(BUILD)/$(MODEL)-train: examples/train.c $(BUILD)/$(MODEL)_train.o $(BUILD)/libcnnrt.a $(FLAGS_STAMP)
	$(CC) $(CFLAGS) $(OMP) $(BLAS_CFLAGS) -Iruntime -I$(GEN_DIR) -DNET_HEADER='"$(MODEL)_train.h"' -DNET=$(MODEL)_net \
	  $< $(BUILD)/$(MODEL)_train.o $(BUILD)/libcnnrt.a $(LIBS) $(OMP) -o $@

# ------------------------------------------------------------------- bench
# Speed of the generated training code and of the float inference code, with
# PyTorch's figures for the same network in the same run (python3-torch).
# The same generated code is also built with -march=native under renamed
# public symbols, so one run times the portable and the CPU-specific builds.
UC_MODEL := $(shell echo $(MODEL) | tr a-z A-Z)
NATIVE_RENAME := -D$(MODEL)_net=$(MODEL)_net_native -D$(MODEL)_train_config=$(MODEL)_train_config_native \
  -D$(MODEL)_predict=$(MODEL)_predict_native -D$(MODEL)_scores=$(MODEL)_scores_native
$(BUILD)/$(MODEL)_train_native.o: $(GEN_DIR)/$(MODEL)_train.c $(GEN_DIR)/$(MODEL)_train.h runtime/cnn_net.h $(FLAGS_STAMP)
	$(CC) $(GEN_FLAGS) -march=native $(NATIVE_RENAME) -c $< -o $@
$(BUILD)/$(MODEL)_infer_native.o: $(GEN_DIR)/$(MODEL)_infer.c $(GEN_DIR)/$(MODEL)_infer.h $(FLAGS_STAMP)
	$(CC) -std=c99 $(OPT) -march=native $(WARN) -I$(GEN_DIR) $(NATIVE_RENAME) -c $< -o $@
# And once more with -DCNN_TRAIN_PROFILE, for the per-layer table (`bench layers`).
PROF_RENAME := -D$(MODEL)_net=$(MODEL)_net_prof -D$(MODEL)_train_config=$(MODEL)_train_config_prof
$(BUILD)/$(MODEL)_train_prof.o: $(GEN_DIR)/$(MODEL)_train.c $(GEN_DIR)/$(MODEL)_train.h runtime/cnn_net.h $(FLAGS_STAMP)
	$(CC) $(GEN_FLAGS) -DCNN_TRAIN_PROFILE $(PROF_RENAME) -c $< -o $@
BENCH_OBJ := $(BUILD)/$(MODEL)_train.o $(BUILD)/$(MODEL)_train_native.o $(BUILD)/$(MODEL)_infer_native.o \
             $(BUILD)/$(MODEL)_train_prof.o
$(BUILD)/bench: examples/bench/bench.c $(BENCH_OBJ) $(GEN_DIR)/$(MODEL)_infer.c $(BUILD)/libcnnrt.a $(FLAGS_STAMP)
	$(CC) $(CFLAGS) $(OMP) $(BLAS_CFLAGS) -Iruntime -I$(GEN_DIR) -DNET_HEADER='"$(MODEL)_train.h"' -DNET=$(MODEL)_net \
	  -DNET_MACS=$(UC_MODEL)_TRAIN_MACS -DINFER_HEADER='"$(MODEL)_infer.h"' -DINFER_PREDICT=$(MODEL)_predict \
	  -DNET_NATIVE=$(MODEL)_net_native -DINFER_PREDICT_NATIVE=$(MODEL)_predict_native \
	  -DCNN_TRAIN_PROFILE -DNET_PROF=$(MODEL)_net_prof -DNET_PREFIX=$(MODEL) \
	  $< $(BENCH_OBJ) $(GEN_DIR)/$(MODEL)_infer.c $(BUILD)/libcnnrt.a $(LIBS) $(OMP) -o $@

# `bench layers` for any model: the FMA peak and where a training step of
# models/MODEL.cnn goes, layer by layer (make profile MODEL=resnet8).
PROF_DIR := $(BUILD)/profile/$(MODEL)
$(PROF_DIR)/$(MODEL)_train.c $(PROF_DIR)/$(MODEL)_train.h &: models/$(MODEL).cnn $(BUILD)/cnnc
	@mkdir -p $(PROF_DIR)
	$(BUILD)/cnnc build $< -o $(PROF_DIR)/
$(PROF_DIR)/bench: examples/bench/bench.c $(PROF_DIR)/$(MODEL)_train.c $(BUILD)/libcnnrt.a $(FLAGS_STAMP)
	$(CC) $(CFLAGS) $(OMP) $(BLAS_CFLAGS) -Iruntime -c $(PROF_DIR)/$(MODEL)_train.c -o $(PROF_DIR)/train.o
	$(CC) $(CFLAGS) $(OMP) $(BLAS_CFLAGS) -Iruntime -DCNN_TRAIN_PROFILE $(PROF_RENAME) \
	  -c $(PROF_DIR)/$(MODEL)_train.c -o $(PROF_DIR)/train_prof.o
	$(CC) $(CFLAGS) $(OMP) $(BLAS_CFLAGS) -Iruntime -I$(PROF_DIR) -DNET_HEADER='"$(MODEL)_train.h"' -DNET=$(MODEL)_net \
	  -DNET_MACS=$(UC_MODEL)_TRAIN_MACS -DCNN_TRAIN_PROFILE -DNET_PROF=$(MODEL)_net_prof -DNET_PREFIX=$(MODEL) \
	  $< $(PROF_DIR)/train.o $(PROF_DIR)/train_prof.o $(BUILD)/libcnnrt.a $(LIBS) $(OMP) -o $@
profile: deps
	$(MAKE) $(PROF_DIR)/bench
	$(PROF_DIR)/bench layers

BENCH_REPS ?= 5
bench: deps
	$(MAKE) $(BUILD)/bench
	@bash .ci/deps bench || echo "bench: python3-torch could not be installed; PyTorch column left empty"
	bash examples/bench/report.sh $(BUILD)/bench $(BENCH_REPS)

train: deps
	$(MAKE) $(BUILD)/$(MODEL)-train
	$(BUILD)/$(MODEL)-train --data $(MNIST_DIR) --save $(BUILD)/$(MODEL).ckpt --log-csv $(BUILD)/$(MODEL).csv

# Loss and accuracy curves of the CSV that `make train` writes.
plot: $(BUILD)/$(MODEL).png
$(BUILD)/$(MODEL).png: $(BUILD)/$(MODEL).csv examples/plot.gp
	@bash .ci/deps plot
	gnuplot -e "csv='$<'; png='$@'; title='$(MODEL)'" examples/plot.gp
$(BUILD)/$(MODEL).csv:
	@echo "no $@: run 'make train' first (it writes the CSV)" >&2; exit 1

# ------------------------------------------------------------------- tests
# Each tests/test_*.c is one CUnit suite linked with tests/cu_main.c.
TEST_CFLAGS := -std=c11 -O1 -g $(WARN) -D_POSIX_C_SOURCE=200809L $(SAN) $(OMP) $(COMPILER_INC) $(BLAS_CFLAGS) -Itests
TEST_LIBS   := -lcunit $(LIBS) $(OMP)
TESTS       :=

# Runtime suites: the runtime sources are compiled into each, with the sanitizers.
RUNTIME_TESTS := rng idx dataset sgd schedule checkpoint progress
TESTS += $(RUNTIME_TESTS:%=$(BUILD)/tests/test_%)
$(RUNTIME_TESTS:%=$(BUILD)/tests/test_%): $(BUILD)/tests/test_%: tests/test_%.c tests/cu_main.c $(RUNTIME_SRC) $(wildcard runtime/*.h)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -Iruntime $< tests/cu_main.c $(RUNTIME_SRC) $(TEST_LIBS) -o $@

# The trainer (committed generated/$(MODEL) code) end to end: determinism,
# checkpoints and exact resume, bad input, SIGKILL while saving, and a short
# real-MNIST run that must learn. A second trainer, for the mnist8ch model,
# supplies another network's checkpoint.
TESTS += $(BUILD)/tests/trainer
$(BUILD)/tests/mnist8ch-train: examples/train.c models/mnist8ch.cnn $(BUILD)/cnnc $(BUILD)/libcnnrt.a
	@rm -rf $(BUILD)/tests/mnist8ch && mkdir -p $(BUILD)/tests/mnist8ch
	$(BUILD)/cnnc build models/mnist8ch.cnn -o $(BUILD)/tests/mnist8ch/
	$(CC) $(CFLAGS) $(OMP) $(BLAS_CFLAGS) -Iruntime -I$(BUILD)/tests/mnist8ch -DNET_HEADER='"mnist8ch_train.h"' -DNET=mnist8ch_net \
	  $< $(BUILD)/tests/mnist8ch/mnist8ch_train.c $(BUILD)/libcnnrt.a $(LIBS) $(OMP) -o $@
# The same trainer without the generated code's x86-64-v3 clones: it must print the same losses to rounding.
# And with the 16-wide kernels as portable code, which runs them on any CPU.
$(BUILD)/tests/$(MODEL)-train-baseline: VARIANT := -DCNN_NO_CLONES
$(BUILD)/tests/$(MODEL)-train-wide: VARIANT := -DCNN_V16_GENERIC
$(BUILD)/tests/$(MODEL)-train-baseline $(BUILD)/tests/$(MODEL)-train-wide: examples/train.c $(GEN_DIR)/$(MODEL)_train.c $(GEN_DIR)/$(MODEL)_train.h $(BUILD)/libcnnrt.a $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(OMP) $(BLAS_CFLAGS) $(VARIANT) -Iruntime -I$(GEN_DIR) \
	  -DNET_HEADER='"$(MODEL)_train.h"' -DNET=$(MODEL)_net $< $(GEN_DIR)/$(MODEL)_train.c $(BUILD)/libcnnrt.a $(LIBS) $(OMP) -o $@
# A 3-channel network: the trainer on N x H x W x C IDX files.
$(BUILD)/tests/rgb8ch-train: examples/train.c tests/nets/rgb8ch.cnn $(BUILD)/cnnc $(BUILD)/libcnnrt.a
	@rm -rf $(BUILD)/tests/rgb8ch && mkdir -p $(BUILD)/tests/rgb8ch
	$(BUILD)/cnnc build tests/nets/rgb8ch.cnn -o $(BUILD)/tests/rgb8ch/
	$(CC) $(CFLAGS) $(OMP) $(BLAS_CFLAGS) -Iruntime -I$(BUILD)/tests/rgb8ch -DNET_HEADER='"rgb8ch_train.h"' -DNET=rgb8ch_net \
	  $< $(BUILD)/tests/rgb8ch/rgb8ch_train.c $(BUILD)/libcnnrt.a $(LIBS) $(OMP) -o $@
# The trainer and runtime with ASan/UBSan (the generated code without): leaks, and misfit data.
$(BUILD)/tests/$(MODEL)-train-san: examples/train.c $(BUILD)/$(MODEL)_train.o $(RUNTIME_SRC) $(wildcard runtime/*.h)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -Iruntime -I$(GEN_DIR) -DNET_HEADER='"$(MODEL)_train.h"' -DNET=$(MODEL)_net \
	  $< $(RUNTIME_SRC) $(BUILD)/$(MODEL)_train.o $(LIBS) $(OMP) -o $@
$(BUILD)/tests/trainer: tests/trainer.sh $(BUILD)/$(MODEL)-train $(BUILD)/tests/mnist8ch-train $(BUILD)/tests/$(MODEL)-train-baseline $(BUILD)/tests/$(MODEL)-train-wide $(BUILD)/tests/$(MODEL)-train-san $(BUILD)/tests/rgb8ch-train $(BUILD)/cnnc
	@mkdir -p $(@D)
	printf '#!/bin/sh\nOTHER_TRAINER=$(BUILD)/tests/mnist8ch-train BASELINE_TRAINER=$(BUILD)/tests/$(MODEL)-train-baseline WIDE_TRAINER=$(BUILD)/tests/$(MODEL)-train-wide SAN_TRAINER=$(BUILD)/tests/$(MODEL)-train-san RGB_TRAINER=$(BUILD)/tests/rgb8ch-train CNNC=$(BUILD)/cnnc exec bash tests/trainer.sh $(BUILD)/$(MODEL)-train "$(MNIST_DIR)"\n' >$@ && chmod +x $@

# tests/run.sh, which runs the others, on stand-in programs.
TESTS += $(BUILD)/tests/run_sh
$(BUILD)/tests/run_sh: tests/run_sh.sh tests/run.sh
	@mkdir -p $(@D)
	printf '#!/bin/sh\nexec bash tests/run_sh.sh\n' >$@ && chmod +x $@

# Every documented target runs .ci/deps before the tools it installs.
TESTS += $(BUILD)/tests/deps
$(BUILD)/tests/deps: tests/deps.sh
	@mkdir -p $(@D)
	printf '#!/bin/sh\nexec bash tests/deps.sh\n' >$@ && chmod +x $@

# Front-end suites: the front end compiled in with the sanitizers (the flex and
# bison objects as built above), and the bad-input corpus run with build/cnnc
# and build/san/cnnc.
FRONTEND_TESTS := lexer parser check report
# (report.c shows the inference memory plan, so infer_plan.c is front end too.)
# The layer kinds (compiler/layer_*.c and what they share) are one unit.
KIND_SRC       := compiler/layers.c $(sort $(wildcard compiler/layer_*.c)) compiler/conv_kernels.c compiler/conv_lanes.c compiler/train_emit.c \
                  compiler/train_plan.c compiler/infer_plan.c compiler/torch_module.c
FRONTEND_SRC   := compiler/ast.c compiler/check.c compiler/diag.c compiler/report.c compiler/net.c \
                  $(KIND_SRC)
TESTS += $(FRONTEND_TESTS:%=$(BUILD)/tests/test_%) $(BUILD)/tests/bad_corpus
$(FRONTEND_TESTS:%=$(BUILD)/tests/test_%): $(BUILD)/tests/test_%: tests/test_%.c tests/cu_main.c $(FRONTEND_SRC) $(BUILD)/compiler/lexer.o $(BUILD)/compiler/parser.o $(wildcard compiler/*.h)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $< tests/cu_main.c $(FRONTEND_SRC) $(BUILD)/compiler/lexer.o $(BUILD)/compiler/parser.o $(TEST_LIBS) -o $@
$(BUILD)/tests/bad_corpus: tests/bad/run.sh $(BUILD)/cnnc $(BUILD)/san/cnnc
	@mkdir -p $(@D)
	printf '#!/bin/sh\nexec bash tests/bad/run.sh $(BUILD)/cnnc $(BUILD)/san/cnnc\n' >$@ && chmod +x $@

# Inference suite: the inference back end with the sanitizers; it emits code,
# builds it with gcc, clang and arm-none-eabi-gcc, and runs it on MNIST.
# emit_train.c: the suite compares inference with the training code's eval forward;
# build/cnnc (order-only): it runs `cnnc summary --weights`.
INFER_SRC := compiler/interp.c compiler/quant.c compiler/emit_infer.c \
             compiler/emit_util.c compiler/emit_train.c compiler/net_ckpt.c
# Other trained networks: their inference checks are tests/infer_nets.c's
# (below), their generated inference code is checked in `make test`.
INFER_NETS := mnist4k7 mnist4k8 mnist4k9
TESTS += $(BUILD)/tests/test_infer
$(BUILD)/tests/test_infer: tests/test_infer.c tests/scores.h tests/cu_main.c $(INFER_SRC) $(FRONTEND_SRC) $(RUNTIME_SRC) $(BUILD)/compiler/lexer.o $(BUILD)/compiler/parser.o $(wildcard compiler/*.h runtime/*.h) | $(BUILD)/cnnc
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $< tests/cu_main.c $(INFER_SRC) $(FRONTEND_SRC) $(RUNTIME_SRC) \
	  $(BUILD)/compiler/lexer.o $(BUILD)/compiler/parser.o $(TEST_LIBS) -ldl -o $@

include examples/firmware/firmware.mk
include tests/fuzz/fuzz.mk

# Generated training code (compiler/emit_train.c). tests/gen_testnets.c builds
# small nets (and mnist14k) by hand and emits them into build/gradcheck/; the
# gradient checks compile them in double with the input gradient, the layer
# tests in float with the activations exposed. The gradient checks run at
# both vector widths of the direct convs, whatever this CPU has:
# test_gradcheck the 8-wide kernels (-DCNN_NO_V16), test_gradcheck_v16 the
# 16-wide ones as portable code (-DCNN_V16_GENERIC). train_warnings compiles
# the committed mnist14k code with gcc and clang, -Werror, with and without
# OpenMP, and the 16-wide kernels as portable code.
TRAIN_EMIT_SRC := compiler/emit_train.c compiler/emit_util.c compiler/net.c $(KIND_SRC)
GC_NETS := gc_conv gc_conv2 gc_bn gc_dropout gc_relu gc_pool gc_fc mnist14k
TL_NETS := tl_conv tl_conv2 tl_bn tl_pool tl_drop tl_lsm mnist14k
GC_DIR  := $(BUILD)/gradcheck
GC_WIDTH_8  := -DCNN_NO_V16
GC_WIDTH_16 := -DCNN_V16_GENERIC
TESTS += $(BUILD)/tests/test_gradcheck $(BUILD)/tests/test_gradcheck_v16 $(BUILD)/tests/test_layers \
         $(BUILD)/tests/train_warnings
# (The layer modules read their arguments through the checker: the front end comes along.)
$(BUILD)/gen_testnets: tests/gen_testnets.c $(TRAIN_EMIT_SRC) $(FRONTEND_SRC) $(BUILD)/compiler/lexer.o $(BUILD)/compiler/parser.o $(wildcard compiler/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(COMPILER_INC) tests/gen_testnets.c $(sort $(TRAIN_EMIT_SRC) $(FRONTEND_SRC)) \
	  $(BUILD)/compiler/lexer.o $(BUILD)/compiler/parser.o -lm -o $@
$(GC_DIR)/stamp: $(BUILD)/gen_testnets
	$(BUILD)/gen_testnets $(GC_DIR) && touch $@
$(GC_DIR)/%_d8.o: $(GC_DIR)/stamp runtime/cnn_net.h
	$(CC) $(TEST_CFLAGS) -DCNN_REAL=double -DCNN_INPUT_GRAD $(GC_WIDTH_8) -Iruntime -c $(GC_DIR)/$*/$*_train.c -o $@
$(GC_DIR)/%_d16.o: $(GC_DIR)/stamp runtime/cnn_net.h
	$(CC) $(TEST_CFLAGS) -DCNN_REAL=double -DCNN_INPUT_GRAD $(GC_WIDTH_16) -Iruntime -c $(GC_DIR)/$*/$*_train.c -o $@
# mnist14k's ~10,000 double forwards run without the sanitizers (test_layers
# runs its float build under them).
$(GC_DIR)/mnist14k_d8.o $(GC_DIR)/mnist14k_d16.o: $(GC_DIR)/mnist14k_d%.o: $(GC_DIR)/stamp runtime/cnn_net.h
	$(CC) -std=c11 -O2 -g $(WARN) $(OMP) $(BLAS_CFLAGS) -DCNN_REAL=double -DCNN_INPUT_GRAD $(GC_WIDTH_$*) -Iruntime \
	  -c $(GC_DIR)/mnist14k/mnist14k_train.c -o $@
$(GC_DIR)/%_f.o: $(GC_DIR)/stamp runtime/cnn_net.h
	$(CC) $(TEST_CFLAGS) -DCNN_EXPOSE_ACT -DCNN_INPUT_GRAD -Iruntime -c $(GC_DIR)/$*/$*_train.c -o $@
# mnist14k's 16-wide kernels under the sanitizers took gcc 12 over two
# minutes more to compile (the 8-wide ones a minute): its float build
# here has the 8-wide ones; the small nets have both.
$(GC_DIR)/mnist14k_f.o: $(GC_DIR)/stamp runtime/cnn_net.h
	$(CC) $(TEST_CFLAGS) -DCNN_NO_V16 -DCNN_EXPOSE_ACT -DCNN_INPUT_GRAD -Iruntime -c $(GC_DIR)/mnist14k/mnist14k_train.c -o $@
# The newer kinds are checked through the front end: tests/nets/gc_*.cnn.
CNN_GC_NETS := gc_same gc_groups gc_rect gc_residual gc_residual2 gc_smooth gc_wgrad gc_bnfuse gc_wgrad2 gc_valid gc_lanes gc_bnpool gc_bndx
$(CNN_GC_NETS:%=$(GC_DIR)/%/stamp): $(GC_DIR)/%/stamp: tests/nets/%.cnn $(BUILD)/cnnc
	@mkdir -p $(@D)
	$(BUILD)/cnnc build $< -o $(@D)/ && touch $@
$(CNN_GC_NETS:%=$(GC_DIR)/%_d8.o): $(GC_DIR)/%_d8.o: $(GC_DIR)/%/stamp runtime/cnn_net.h
	$(CC) $(TEST_CFLAGS) -DCNN_REAL=double -DCNN_INPUT_GRAD $(GC_WIDTH_8) -Iruntime -c $(GC_DIR)/$*/$*_train.c -o $@
$(CNN_GC_NETS:%=$(GC_DIR)/%_d16.o): $(GC_DIR)/%_d16.o: $(GC_DIR)/%/stamp runtime/cnn_net.h
	$(CC) $(TEST_CFLAGS) -DCNN_REAL=double -DCNN_INPUT_GRAD $(GC_WIDTH_16) -Iruntime -c $(GC_DIR)/$*/$*_train.c -o $@
ALL_GC := $(GC_NETS) $(CNN_GC_NETS)
# test_gradcheck$(1): the checks on the objects of width $(2).
define GRADCHECK
$(BUILD)/tests/test_gradcheck$(1): tests/test_gradcheck.c tests/cu_main.c runtime/rng.c $(ALL_GC:%=$(GC_DIR)/%_d$(2).o)
	@mkdir -p $$(@D)
	$$(CC) $$(TEST_CFLAGS) -DCNN_REAL=double -DCNN_INPUT_GRAD -DGC_WIDTH=$(2) -Iruntime $(ALL_GC:%=-I$(GC_DIR)/%) \
	  $$< tests/cu_main.c runtime/rng.c $(ALL_GC:%=$(GC_DIR)/%_d$(2).o) $$(TEST_LIBS) -o $$@
endef
$(eval $(call GRADCHECK,,8))
$(eval $(call GRADCHECK,_v16,16))
$(BUILD)/tests/test_layers: tests/test_layers.c tests/cu_main.c runtime/rng.c $(TL_NETS:%=$(GC_DIR)/%_f.o)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -DCNN_EXPOSE_ACT -DCNN_INPUT_GRAD -Iruntime $(TL_NETS:%=-I$(GC_DIR)/%) $< tests/cu_main.c runtime/rng.c $(TL_NETS:%=$(GC_DIR)/%_f.o) $(TEST_LIBS) -o $@
$(BUILD)/tests/train_warnings: generated/mnist14k/mnist14k_train.c generated/mnist14k/mnist14k_train.h runtime/cnn_net.h
	@mkdir -p $(@D)
	for cc in gcc clang; do for omp in '' -fopenmp; do for real in '' -DCNN_REAL=double; do \
	  $$cc -std=c11 -O2 $(WARN) $$omp $$real $(BLAS_CFLAGS) -Iruntime -c $< -o $@.o || exit 1; done; done; \
	  $$cc -std=c11 -O2 $(WARN) -fopenmp -DCNN_V16_GENERIC $(BLAS_CFLAGS) -Iruntime -c $< -o $@.o || exit 1; done
	rm -f $@.o && printf '#!/bin/sh\nexit 0\n' >$@ && chmod +x $@

# The generated training code and the runtime's SGD against PyTorch's numbers
# (tests/data/torch_ref.bin, written by tests/torch_reference.py) for
# mnist14k without dropout (tests/nets/mnist14k_nodrop.cnn).
TORCH_DIR := $(BUILD)/torch
TESTS += $(BUILD)/tests/test_torch
$(TORCH_DIR)/mnist14k_nodrop_train.c $(TORCH_DIR)/mnist14k_nodrop_train.h &: tests/nets/mnist14k_nodrop.cnn $(BUILD)/cnnc
	@mkdir -p $(TORCH_DIR)
	$(BUILD)/cnnc build $< -o $(TORCH_DIR)/
# The generated code without the sanitizers (see mnist14k_f.o), as the
# trainer builds it: the kernels this CPU picks.
$(TORCH_DIR)/mnist14k_nodrop_train.o: $(TORCH_DIR)/mnist14k_nodrop_train.c $(TORCH_DIR)/mnist14k_nodrop_train.h runtime/cnn_net.h $(FLAGS_STAMP)
	$(CC) -std=c11 -O2 -g $(WARN) $(OMP) $(BLAS_CFLAGS) -Iruntime -c $< -o $@
$(BUILD)/tests/test_torch: tests/test_torch.c tests/cu_main.c $(TORCH_DIR)/mnist14k_nodrop_train.o $(TORCH_DIR)/mnist14k_nodrop_train.h $(RUNTIME_SRC) $(wildcard runtime/*.h) tests/data/torch_ref.bin
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -Iruntime -I$(TORCH_DIR) $< tests/cu_main.c $(TORCH_DIR)/mnist14k_nodrop_train.o $(RUNTIME_SRC) $(TEST_LIBS) -o $@
# The newer layer kinds (tests/nets/torch_kinds.cnn, tests/data/torch_kinds.bin).
TESTS += $(BUILD)/tests/test_torch_kinds
$(TORCH_DIR)/torch_kinds_train.c $(TORCH_DIR)/torch_kinds_train.h &: tests/nets/torch_kinds.cnn $(BUILD)/cnnc
	@mkdir -p $(TORCH_DIR)
	$(BUILD)/cnnc build $< -o $(TORCH_DIR)/
$(BUILD)/tests/test_torch_kinds: tests/test_torch.c tests/cu_main.c $(TORCH_DIR)/torch_kinds_train.c $(TORCH_DIR)/torch_kinds_train.h $(RUNTIME_SRC) $(wildcard runtime/*.h) tests/data/torch_kinds.bin
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -Iruntime -I$(TORCH_DIR) -DNET_HEADER='"torch_kinds_train.h"' -DNET=torch_kinds_net \
	  -DREF_DEFAULT='"tests/data/torch_kinds.bin"' $< tests/cu_main.c $(TORCH_DIR)/torch_kinds_train.c $(RUNTIME_SRC) $(TEST_LIBS) -o $@

# cnnc export round trips (tests/torch_export.py, with python3-torch): every
# model's training code with tests/dump_logprobs.c gives the eval
# log-probabilities the exported PyTorch module must match.
EXPORT_MODELS := $(sort $(basename $(notdir $(wildcard models/*.cnn))))
EXPORT_DIR    := $(BUILD)/export
$(EXPORT_MODELS:%=$(EXPORT_DIR)/%-logprobs): $(EXPORT_DIR)/%-logprobs: models/%.cnn tests/dump_logprobs.c $(BUILD)/cnnc $(BUILD)/libcnnrt.a
	@rm -rf $(EXPORT_DIR)/$* && mkdir -p $(EXPORT_DIR)/$*
	$(BUILD)/cnnc build $< -o $(EXPORT_DIR)/$*/
	$(CC) $(CFLAGS) $(OMP) $(BLAS_CFLAGS) -Iruntime -I$(EXPORT_DIR)/$* -DNET_HEADER='"$*_train.h"' -DNET=$*_net \
	  tests/dump_logprobs.c $(EXPORT_DIR)/$*/$*_train.c $(BUILD)/libcnnrt.a $(LIBS) $(OMP) -o $@
TESTS += $(BUILD)/tests/torch_export
$(BUILD)/tests/torch_export: tests/torch_export.sh tests/torch_export.py $(EXPORT_MODELS:%=$(EXPORT_DIR)/%-logprobs) $(BUILD)/cnnc
	@mkdir -p $(@D)
	printf '#!/bin/sh\nexec bash tests/torch_export.sh $(BUILD) "$(MNIST_DIR)"\n' >$@ && chmod +x $@

# The MLPerf Tiny models train a few epochs on generated data (tests/models.sh).
SMOKE_MODELS := dscnn resnet8
$(BUILD)/mkdata: tests/mkdata.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< -o $@
$(SMOKE_MODELS:%=$(BUILD)/models/%-train): $(BUILD)/models/%-train: models/%.cnn examples/train.c $(BUILD)/cnnc $(BUILD)/libcnnrt.a
	@rm -rf $(BUILD)/models/$* && mkdir -p $(BUILD)/models/$*
	$(BUILD)/cnnc build $< -o $(BUILD)/models/$*/
	$(CC) $(CFLAGS) $(OMP) $(BLAS_CFLAGS) -Iruntime -I$(BUILD)/models/$* -DNET_HEADER='"$*_train.h"' -DNET=$*_net \
	  examples/train.c $(BUILD)/models/$*/$*_train.c $(BUILD)/libcnnrt.a $(LIBS) $(OMP) -o $@
# Their data: H W C CLASSES TRAIN TEST for tests/mkdata.c; weights from three
# short epochs on it (--save), whose log tests/models.sh reads.
resnet8_DATA := 32 32 3 10 640 200
dscnn_DATA   := 49 10 1 12 1600 200
$(SMOKE_MODELS:%=$(BUILD)/models/%-data/stamp): $(BUILD)/models/%-data/stamp: $(BUILD)/mkdata
	@rm -rf $(@D) && mkdir -p $(@D)
	$(BUILD)/mkdata $(@D) $($*_DATA) && touch $@
$(SMOKE_MODELS:%=$(BUILD)/models/%.ckpt): $(BUILD)/models/%.ckpt: $(BUILD)/models/%-train $(BUILD)/models/%-data/stamp
	rm -f $@ $(BUILD)/models/$*.csv
	$< --data $(BUILD)/models/$*-data --epochs 3 --threads 2 --save $@ --log-csv $(BUILD)/models/$*.csv \
	  >$(BUILD)/models/$*-train.log 2>&1 || { tail -5 $(BUILD)/models/$*-train.log; exit 1; }
TESTS += $(BUILD)/tests/models
$(BUILD)/tests/models: tests/models.sh $(SMOKE_MODELS:%=$(BUILD)/models/%.ckpt)
	@mkdir -p $(@D)
	printf '#!/bin/sh\nexec bash tests/models.sh %s %s\n' "dscnn:$(BUILD)/models/dscnn.csv:12:$(BUILD)/models/dscnn/dscnn_train.c" \
	  "resnet8:$(BUILD)/models/resnet8.csv:10:$(BUILD)/models/resnet8/resnet8_train.c" >$@
	chmod +x $@

# The inference code of the other networks against their training code
# (tests/infer_nets.c): LeNet-5 and the residual MNIST net with their
# committed checkpoints on MNIST, int8 within 0.5 points of float; ResNet-8
# and DS-CNN with the short-trained weights on their generated data.
$(BUILD)/tests/infer_nets-bin: tests/infer_nets.c tests/scores.h $(INFER_SRC) $(FRONTEND_SRC) $(RUNTIME_SRC) $(BUILD)/compiler/lexer.o $(BUILD)/compiler/parser.o $(wildcard compiler/*.h runtime/*.h)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $< $(INFER_SRC) $(FRONTEND_SRC) $(RUNTIME_SRC) \
	  $(BUILD)/compiler/lexer.o $(BUILD)/compiler/parser.o $(LIBS) $(OMP) -ldl -o $@
TESTS += $(BUILD)/tests/infer_nets
$(BUILD)/tests/infer_nets: tests/infer_nets.sh $(BUILD)/tests/infer_nets-bin $(SMOKE_MODELS:%=$(BUILD)/models/%.ckpt)
	printf '#!/bin/sh\nexec bash tests/infer_nets.sh $(BUILD)/tests/infer_nets-bin $(BUILD)/tests/infer_nets-out %s %s %s %s %s %s %s\n' \
	  "$(MNIST_DIR):models/lenet5.cnn:models/lenet5.ckpt:0.5" \
	  "$(MNIST_DIR):models/mnist_resnet.cnn:models/mnist_resnet.ckpt:0.5" \
	  "$(MNIST_DIR):models/mnist4k7.cnn:models/mnist4k7.ckpt:0.2" \
	  "$(MNIST_DIR):models/mnist4k8.cnn:models/mnist4k8.ckpt:0.2" \
	  "$(MNIST_DIR):models/mnist4k9.cnn:models/mnist4k9.ckpt:0.2" \
	  "$(BUILD)/models/resnet8-data:models/resnet8.cnn:$(BUILD)/models/resnet8.ckpt:3" \
	  "$(BUILD)/models/dscnn-data:models/dscnn.cnn:$(BUILD)/models/dscnn.ckpt:3" >$@
	chmod +x $@

# Forward + backward time per batch of the generated mnist14k (median).
$(BUILD)/bench_train_step: tests/bench_train_step.c $(BUILD)/$(MODEL)_train.o runtime/rng.c
	$(CC) $(CFLAGS) $(OMP) $(BLAS_CFLAGS) -Iruntime -I$(GEN_DIR) -DNET_HEADER='"$(MODEL)_train.h"' -DNET=$(MODEL)_net \
	  $< $(BUILD)/$(MODEL)_train.o runtime/rng.c $(LIBS) $(OMP) -o $@

# The test programs build and run on every core (tests/run.sh runs them side
# by side and prints each one's output whole, in this order).
JOBS    ?= $(shell nproc 2>/dev/null || echo 1)
test: deps-test all
	$(MAKE) check-generated
	for m in $(INFER_NETS); do $(MAKE) check-generated-infer MODEL=$$m || exit 1; done
	$(MAKE) -j$(JOBS) test-build
	$(MAKE) firmware-test
	TEST_JOBS=$(JOBS) bash tests/run.sh $(TESTS)

test-build: $(TESTS)

clean:
	rm -rf $(BUILD)
