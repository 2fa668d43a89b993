# firmware.mk: the bare-metal Cortex-M4F demo (included by the Makefile).
#   make firmware-test   build examples/firmware for QEMU mps2-an386 and for
#                        the host, run both on the first FW_N test images,
#                        require identical predictions and int8 score bits
#                        (also of the DSP path built on the host with
#                        emulated intrinsics, and of the portable path on
#                        the target), print sizes and the
#                        instructions per inference and, from a second
#                        build with -DCNN_PROFILE, the instructions per op.
#                        mnist14k, mnist4k7, mnist4k8 and mnist4k9 (generated/, 100 MNIST
#                        digits), then
#                        ResNet-8 and DS-CNN (weights and calibration from
#                        their short run on generated data, 10 images).
#                        Installs the Cortex-M toolchain and QEMU first when
#                        they are missing.
# One network per make run: FW_MODEL, its inference code in FW_GEN, its
# test images in FW_DATA (FW_CLASSES classes).
FW_MODEL   ?= $(MODEL)
FW_GEN     ?= $(GEN_DIR)
FW_DATA    ?= $(MNIST_DIR)
FW_CLASSES ?= 10
FW_N       ?= 100
FW_DIR     := $(BUILD)/firmware/$(FW_MODEL)
FW_UP      := $(shell echo $(FW_MODEL) | tr a-z A-Z)
ARM_CC    := arm-none-eabi-gcc
ARM_FLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
FW_CFLAGS := -std=c99 -O2 -g -Wall -Wextra -Wpedantic -Werror
FW_INC    := -I$(FW_GEN) -I$(FW_DIR)
FW_INFER  := $(FW_GEN)/$(FW_MODEL)_infer.c $(FW_GEN)/$(FW_MODEL)_infer_int8.c
FW_QEMU   := qemu-system-arm -M mps2-an386 -nographic -semihosting-config enable=on,target=native \
             -icount shift=0

# Everything that runs arm-none-eabi-* or QEMU waits for them (order-only).
.PHONY: deps-firmware firmware-run
deps-firmware:
	@bash .ci/deps firmware

$(BUILD)/firmware/mkdigits: examples/firmware/mkdigits.c $(BUILD)/libcnnrt.a runtime/idx.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iruntime $< $(BUILD)/libcnnrt.a -lz -o $@

# The networks trained here only briefly (on generated data): their
# inference code comes from that checkpoint, calibrated on that data.
ifneq ($(FW_GEN),generated/$(FW_MODEL))
FW_CKPT := $(BUILD)/models/$(FW_MODEL).ckpt
$(FW_INFER) $(FW_INFER:.c=.h) &: $(FW_CKPT) $(BUILD)/cnnc
	@mkdir -p $(FW_GEN)
	$(BUILD)/cnnc build models/$(FW_MODEL).cnn -o $(FW_GEN)/ --infer --weights $(FW_CKPT)
	$(BUILD)/cnnc build models/$(FW_MODEL).cnn -o $(FW_GEN)/ --infer --weights $(FW_CKPT) \
	  --int8 --calib $(FW_DATA) --calib-n 500
endif

# The test images, from the IDX files at build time (data is not committed).
$(FW_DIR)/digits.h: $(BUILD)/firmware/mkdigits $(FW_CKPT)
	@mkdir -p $(@D)
	$< $(FW_DATA) $(FW_N) $(FW_CLASSES) > $@

# The network's names for main.c.
$(FW_DIR)/fw_model.h: $(FW_INFER)
	@mkdir -p $(@D)
	{ printf '/* fw_model.h: the network main.c runs (written by firmware.mk). */\n'; \
	  printf '#include "%s_infer.h"\n#include "%s_infer_int8.h"\n' $(FW_MODEL) $(FW_MODEL); \
	  for n in PREDICT:predict INT8_PREDICT:int8_predict INT8_SCORES:int8_scores PROFILE:profile \
	           INT8_PROFILE:int8_profile; do printf '#define FW_%s $(FW_MODEL)_%s\n' $${n%%:*} $${n#*:}; done; \
	  for n in CLASSES OPS INT8_OPS OP_INFO INT8_OP_INFO ARENA_BYTES INT8_ARENA_BYTES; do \
	    printf '#define FW_%s $(FW_UP)_%s\n' $$n $$n; done; } > $@

FW_MAIN_DEPS := examples/firmware/main.c $(FW_DIR)/digits.h $(FW_DIR)/fw_model.h

$(FW_DIR)/%.arm.o: $(FW_GEN)/%.c $(FW_GEN)/%.h | deps-firmware
	@mkdir -p $(@D)
	$(ARM_CC) $(ARM_FLAGS) $(FW_CFLAGS) -c $< -o $@

$(FW_DIR)/firmware.elf: examples/firmware/startup.c examples/firmware/mps2_an386.ld $(FW_MAIN_DEPS) \
                        $(FW_DIR)/$(FW_MODEL)_infer.arm.o $(FW_DIR)/$(FW_MODEL)_infer_int8.arm.o | deps-firmware
	$(ARM_CC) $(ARM_FLAGS) $(FW_CFLAGS) $(FW_INC) --specs=rdimon.specs -nostartfiles \
	  -T examples/firmware/mps2_an386.ld examples/firmware/startup.c examples/firmware/main.c \
	  $(FW_DIR)/$(FW_MODEL)_infer.arm.o $(FW_DIR)/$(FW_MODEL)_infer_int8.arm.o -o $@

# The profile build: the same code with -DCNN_PROFILE, whose hooks count
# instructions per op (examples/firmware/profile.awk prints the table).
$(FW_DIR)/%.prof.arm.o: $(FW_GEN)/%.c $(FW_GEN)/%.h | deps-firmware
	@mkdir -p $(@D)
	$(ARM_CC) $(ARM_FLAGS) $(FW_CFLAGS) -DCNN_PROFILE -c $< -o $@

$(FW_DIR)/firmware-prof.elf: examples/firmware/startup.c examples/firmware/mps2_an386.ld $(FW_MAIN_DEPS) \
                        $(FW_DIR)/$(FW_MODEL)_infer.prof.arm.o $(FW_DIR)/$(FW_MODEL)_infer_int8.prof.arm.o
	$(ARM_CC) $(ARM_FLAGS) $(FW_CFLAGS) -DCNN_PROFILE $(FW_INC) --specs=rdimon.specs -nostartfiles \
	  -T examples/firmware/mps2_an386.ld examples/firmware/startup.c examples/firmware/main.c \
	  $(FW_DIR)/$(FW_MODEL)_infer.prof.arm.o $(FW_DIR)/$(FW_MODEL)_infer_int8.prof.arm.o -o $@

# The portable int8 row functions on the same target (-U__ARM_FEATURE_DSP):
# they must print the DSP build's bits too.
$(FW_DIR)/%.port.arm.o: $(FW_GEN)/%.c $(FW_GEN)/%.h | deps-firmware
	@mkdir -p $(@D)
	$(ARM_CC) $(ARM_FLAGS) $(FW_CFLAGS) -U__ARM_FEATURE_DSP -c $< -o $@

$(FW_DIR)/firmware-port.elf: examples/firmware/startup.c examples/firmware/mps2_an386.ld $(FW_MAIN_DEPS) \
                        $(FW_DIR)/$(FW_MODEL)_infer.arm.o $(FW_DIR)/$(FW_MODEL)_infer_int8.port.arm.o
	$(ARM_CC) $(ARM_FLAGS) $(FW_CFLAGS) $(FW_INC) --specs=rdimon.specs -nostartfiles \
	  -T examples/firmware/mps2_an386.ld examples/firmware/startup.c examples/firmware/main.c \
	  $(FW_DIR)/$(FW_MODEL)_infer.arm.o $(FW_DIR)/$(FW_MODEL)_infer_int8.port.arm.o -o $@

# The same main and inference code on the host: the predictions to match.
$(FW_DIR)/firmware-host: $(FW_MAIN_DEPS) $(FW_INFER)
	$(CC) $(FW_CFLAGS) $(FW_INC) examples/firmware/main.c $(FW_INFER) -o $@

# The DSP path of the int8 code on the host, on emulated ACLE intrinsics.
$(FW_DIR)/firmware-host-dsp: $(FW_MAIN_DEPS) $(FW_INFER) examples/firmware/acle_host/arm_acle.h
	$(CC) $(FW_CFLAGS) $(FW_INC) -D__ARM_FEATURE_DSP=1 -Iexamples/firmware/acle_host examples/firmware/main.c $(FW_INFER) -o $@

firmware-test: firmware-run | deps-firmware
	$(MAKE) --no-print-directory firmware-run FW_MODEL=mnist4k7 FW_GEN=generated/mnist4k7
	$(MAKE) --no-print-directory firmware-run FW_MODEL=mnist4k8 FW_GEN=generated/mnist4k8
	$(MAKE) --no-print-directory firmware-run FW_MODEL=mnist4k9 FW_GEN=generated/mnist4k9
	$(MAKE) --no-print-directory firmware-run FW_MODEL=resnet8 FW_GEN=$(BUILD)/firmware/resnet8/gen \
	  FW_DATA=$(BUILD)/models/resnet8-data FW_CLASSES=10 FW_N=10
	$(MAKE) --no-print-directory firmware-run FW_MODEL=dscnn FW_GEN=$(BUILD)/firmware/dscnn/gen \
	  FW_DATA=$(BUILD)/models/dscnn-data FW_CLASSES=12 FW_N=10

firmware-run: $(FW_DIR)/firmware.elf $(FW_DIR)/firmware-prof.elf $(FW_DIR)/firmware-port.elf \
              $(FW_DIR)/firmware-host $(FW_DIR)/firmware-host-dsp | deps-firmware
	$(FW_DIR)/firmware-host > $(FW_DIR)/host.txt
	$(FW_DIR)/firmware-host-dsp | grep -E '^(digit|correct)' > $(FW_DIR)/host-dsp.pred
	timeout 900 $(FW_QEMU) -kernel $(FW_DIR)/firmware.elf > $(FW_DIR)/qemu.txt
	timeout 900 $(FW_QEMU) -kernel $(FW_DIR)/firmware-prof.elf > $(FW_DIR)/qemu-prof.txt
	timeout 900 $(FW_QEMU) -kernel $(FW_DIR)/firmware-port.elf | grep -E '^(digit|correct)' > $(FW_DIR)/qemu-port.pred
	@grep -E '^(digit|correct)' $(FW_DIR)/host.txt > $(FW_DIR)/host.pred
	@grep -E '^(digit|correct)' $(FW_DIR)/qemu.txt > $(FW_DIR)/qemu.pred
	@test $$(grep -c '^digit' $(FW_DIR)/qemu.pred) -eq $(FW_N) || { echo "firmware-test: QEMU run incomplete"; exit 1; }
	diff $(FW_DIR)/host.pred $(FW_DIR)/qemu.pred
	diff $(FW_DIR)/host.pred $(FW_DIR)/host-dsp.pred
	diff $(FW_DIR)/host.pred $(FW_DIR)/qemu-port.pred
	@arm-none-eabi-size $(FW_DIR)/$(FW_MODEL)_infer.arm.o $(FW_DIR)/$(FW_MODEL)_infer_int8.arm.o $(FW_DIR)/firmware.elf
	@grep -v '^digit' $(FW_DIR)/qemu.txt
	@{ for v in float int8; do o=$(FW_DIR)/$(FW_MODEL)_infer$$([ $$v = int8 ] && echo _int8).arm.o; \
	     arm-none-eabi-nm -S $$o | sed "s/^/nm $$v /"; \
	     arm-none-eabi-size $$o | awk -v v=$$v 'NR == 2 {print "size", v, $$1}'; done; \
	   awk '/^instructions per inference/ {print "total float", $$5; print "total int8", $$7}' $(FW_DIR)/qemu.txt; \
	   grep '^profile' $(FW_DIR)/qemu-prof.txt; } | awk -f examples/firmware/profile.awk
	@echo "firmware-test: $(FW_MODEL), $(FW_N) images, QEMU (Cortex-M4) predictions and int8 score bits = host's (portable and emulated DSP path), and the portable path's on QEMU"

# ------------------------------------------------- generated inference code
# generated/$(MODEL)/$(MODEL)_infer{,_int8}.{c,h} come from the trained
# checkpoint; int8 is calibrated on the first 1000 MNIST training images.
INFER_CKPT ?= models/$(MODEL).ckpt
.PHONY: generate-infer check-generated-infer
generate-infer: $(BUILD)/cnnc
	$(BUILD)/cnnc build models/$(MODEL).cnn -o $(GEN_DIR)/ --infer --weights $(INFER_CKPT)
	$(BUILD)/cnnc build models/$(MODEL).cnn -o $(GEN_DIR)/ --infer --weights $(INFER_CKPT) \
	  --int8 --calib $(MNIST_DIR) --calib-n 1000

# Regenerates the inference code into build/ and diffs it with generated/.
check-generated-infer: $(BUILD)/cnnc
	@if [ ! -f $(INFER_CKPT) ]; then echo "check-generated-infer: no $(INFER_CKPT), skipped"; exit 0; fi; \
	rm -rf $(BUILD)/regen-infer && mkdir -p $(BUILD)/regen-infer && \
	$(BUILD)/cnnc build models/$(MODEL).cnn -o $(BUILD)/regen-infer/ --infer --weights $(INFER_CKPT) && \
	$(BUILD)/cnnc build models/$(MODEL).cnn -o $(BUILD)/regen-infer/ --infer --weights $(INFER_CKPT) \
	  --int8 --calib $(MNIST_DIR) --calib-n 1000 && \
	for f in $(MODEL)_infer.h $(MODEL)_infer.c $(MODEL)_infer_int8.h $(MODEL)_infer_int8.c; do \
	  diff $(GEN_DIR)/$$f $(BUILD)/regen-infer/$$f || exit 1; done
check-generated: check-generated-infer
