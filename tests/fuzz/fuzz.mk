# fuzz.mk: libFuzzer harnesses and the random-network test of issue #14
# (included by the Makefile; see tests/fuzz/README.md).
#   make fuzz        run each harness for FUZZ_SECONDS (default 600) into
#                    build/fuzz/corpus/NAME, seeded from tests/fuzz/corpus/NAME;
#                    a crash is written to build/fuzz/crash-NAME-* and fails
#   make fuzz-seeds  regenerate the committed checkpoint and IDX seeds
# `make test` runs build/tests/fuzz_burst: every committed reproducer in
# tests/fuzz/crashes/NAME, then FUZZ_BURST seconds (default 20) per harness.
# Uses the Makefile's COMPILER_SRC, RUNTIME_SRC, COMPILER_INC, LIBS and TESTS, so
# fuzz_cnn links whatever cnnc is made of.
FUZZ_CC      := clang
FUZZ_NAMES   := cnn ckpt idx
FUZZ_SECONDS ?= 600
FUZZ_BURST   ?= 20
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_SAN     := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# The code under test: as in build/san/cnnc (not -Wpedantic clean: flex and bison).
FUZZ_LIBFLAGS := -std=c11 -O1 -g -Wall -Werror -Wno-unused-function -D_POSIX_C_SOURCE=200809L $(FUZZ_SAN)
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-seeds

# The harness itself is held to the project's warnings.
$(FUZZ_DIR)/%.o: tests/fuzz/%.c $(wildcard compiler/*.h runtime/*.h) $(BUILD)/compiler/parser.h
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=c11 -O1 -g $(WARN) $(FUZZ_SAN) $(COMPILER_INC) -c $< -o $@

# The front end: everything cnnc is linked from, as build/san/cnnc.
$(FUZZ_DIR)/fuzz_cnn: $(FUZZ_DIR)/fuzz_cnn.o $(COMPILER_SRC) $(RUNTIME_SRC) $(BUILD)/compiler/lexer.c $(BUILD)/compiler/parser.c
	$(FUZZ_CC) $(FUZZ_LIBFLAGS) $(COMPILER_INC) $(BLAS_CFLAGS) $< $(COMPILER_SRC) $(RUNTIME_SRC) \
	  $(BUILD)/compiler/lexer.c $(BUILD)/compiler/parser.c $(LIBS) -o $@
$(FUZZ_DIR)/fuzz_ckpt $(FUZZ_DIR)/fuzz_idx: $(FUZZ_DIR)/%: $(FUZZ_DIR)/%.o $(RUNTIME_SRC)
	$(FUZZ_CC) $(FUZZ_LIBFLAGS) -Iruntime $(BLAS_CFLAGS) $< $(RUNTIME_SRC) $(LIBS) -o $@

fuzz-build: $(FUZZ_BINS)

# Long runs, one harness after the other; FUZZ_SECONDS=3600 for the hour.
fuzz:
	@bash .ci/deps fuzz
	$(MAKE) fuzz-build
	@for n in $(FUZZ_NAMES); do mkdir -p $(FUZZ_DIR)/corpus/$$n; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_DIR)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    $$(test -f tests/fuzz/$$n.dict && echo -dict=tests/fuzz/$$n.dict) \
	    -artifact_prefix=$(FUZZ_DIR)/crash-$$n- -print_final_stats=1 \
	    $(FUZZ_DIR)/corpus/$$n tests/fuzz/corpus/$$n || exit 1; done

# The short bursts of `make test`.
TESTS += $(BUILD)/tests/fuzz_burst
$(BUILD)/tests/fuzz_burst: tests/fuzz/run.sh $(FUZZ_BINS)
	@mkdir -p $(@D)
	printf '#!/bin/sh\nexec bash tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_BURST) $(FUZZ_NAMES)\n' >$@ && chmod +x $@

# Seeds written by the runtime's own writers (a checkpoint, IDX raw and gzip).
$(FUZZ_DIR)/mkseeds: tests/fuzz/mkseeds.c $(BUILD)/libcnnrt.a $(wildcard runtime/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iruntime $< $(BUILD)/libcnnrt.a -lcjson -lz -lm -o $@
fuzz-seeds: $(FUZZ_DIR)/mkseeds
	$< tests/fuzz/corpus

# ---------------------------------------------------------- random networks
# tests/random_nets.sh: RANDOM_NETS nets drawn from seed RANDOM_NETS_SEED by
# tests/gen_random_nets.c are checked, built, compiled with gcc and clang,
# trained 3 steps, and their float and int8 inference compiled and checked
# against the training code by $(BUILD)/tests/infer_nets-bin.
#   make random-nets RANDOM_NETS=200 RANDOM_NETS_SEED=7   by hand
# `make test` runs it (RANDOM_NETS_TEST=0 leaves it out), and the nets of
# tests/random_nets/, one per kind of failure it once found.
RANDOM_NETS      ?= 10
RANDOM_NETS_SEED ?= 1
RANDOM_NETS_TEST ?= 1
# 1: only layer orders the inference code folds (a conv or dense reads the input,
# batchnorm directly on a conv or dense, relu and batchnorm not on a residual's input).
RANDOM_NETS_INFER_OK ?=
.PHONY: random-nets
$(BUILD)/gen_random_nets: tests/gen_random_nets.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< -o $@
RANDOM_NETS_DEPS := tests/random_nets.sh $(BUILD)/gen_random_nets $(BUILD)/cnnc $(BUILD)/san/cnnc $(BUILD)/libcnnrt.a \
  $(BUILD)/tests/infer_nets-bin
$(BUILD)/tests/random_nets: $(RANDOM_NETS_DEPS) FORCE
	@mkdir -p $(@D)
	@printf '#!/bin/sh\nSAN_CNNC=$(BUILD)/san/cnnc INFER_OK=$(RANDOM_NETS_INFER_OK) exec bash tests/random_nets.sh $(RANDOM_NETS_SEED) $(RANDOM_NETS)\n' >$@ && chmod +x $@
$(BUILD)/tests/random_nets_files: $(RANDOM_NETS_DEPS) $(wildcard tests/random_nets/*.cnn)
	@mkdir -p $(@D)
	@printf '#!/bin/sh\nSAN_CNNC=$(BUILD)/san/cnnc exec bash tests/random_nets.sh --files tests/random_nets/*.cnn\n' >$@ && chmod +x $@
ifeq ($(RANDOM_NETS_TEST),1)
TESTS += $(BUILD)/tests/random_nets $(BUILD)/tests/random_nets_files
endif
random-nets: $(RANDOM_NETS_DEPS)
	SAN_CNNC=$(BUILD)/san/cnnc KEEP=1 INFER_OK=$(RANDOM_NETS_INFER_OK) bash tests/random_nets.sh $(RANDOM_NETS_SEED) $(RANDOM_NETS)
