# firmware.mk: the bare-metal Cortex-M4F demo (included by the Makefile).
#   make firmware-test   build examples/firmware for QEMU mps2-an386 and for
#                        the host, run both on the first FW_N MNIST test digits,
#                        require identical predictions and int8 score bits
#                        (also of the DSP path built on the host with
#                        emulated intrinsics, and of the portable path on
#                        the target), print sizes and the
#                        instructions per inference and, from a second
#                        build with -DCNN_PROFILE, the instructions per op.
#                        Installs the Cortex-M toolchain and QEMU first when
#                        they are missing.
# One directory per model (make firmware-test MODEL=NAME), so that no target
# built for one model is taken as up to date for another.
FW_DIR    := $(BUILD)/firmware/$(MODEL)
FW_N      ?= 100
# main.c names mnist14k; another model builds a copy with its names.
FW_MAIN   := $(if $(filter mnist14k,$(MODEL)),examples/firmware/main.c,$(FW_DIR)/main.c)
ARM_CC    := arm-none-eabi-gcc
ARM_FLAGS := -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
FW_CFLAGS := -std=c99 -O2 -g -Wall -Wextra -Wpedantic -Werror
FW_INC    := -I$(GEN_DIR) -I$(FW_DIR)
FW_INFER  := $(GEN_DIR)/$(MODEL)_infer.c $(GEN_DIR)/$(MODEL)_infer_int8.c
FW_QEMU   := qemu-system-arm -M mps2-an386 -nographic -semihosting-config enable=on,target=native \
             -icount shift=0

# Everything that runs arm-none-eabi-* or QEMU waits for them (order-only).
.PHONY: deps-firmware
deps-firmware:
	@bash .ci/deps firmware

$(FW_DIR)/mkdigits: examples/firmware/mkdigits.c $(BUILD)/libcnnrt.a runtime/idx.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Iruntime $< $(BUILD)/libcnnrt.a -lz -o $@

$(FW_DIR)/main.c: examples/firmware/main.c
	@mkdir -p $(@D)
	sed -e 's/mnist14k/$(MODEL)/g' -e "s/MNIST14K/$$(echo $(MODEL) | tr a-z A-Z)/g" $< > $@

# The test digits, from the IDX files at build time (MNIST is not committed).
$(FW_DIR)/digits.h: $(FW_DIR)/mkdigits
	$< $(MNIST_DIR) $(FW_N) > $@

$(FW_DIR)/%.arm.o: $(GEN_DIR)/%.c $(GEN_DIR)/%.h | deps-firmware
	@mkdir -p $(@D)
	$(ARM_CC) $(ARM_FLAGS) $(FW_CFLAGS) -c $< -o $@

$(FW_DIR)/firmware.elf: examples/firmware/startup.c $(FW_MAIN) examples/firmware/mps2_an386.ld \
                        $(FW_DIR)/$(MODEL)_infer.arm.o $(FW_DIR)/$(MODEL)_infer_int8.arm.o $(FW_DIR)/digits.h | deps-firmware
	$(ARM_CC) $(ARM_FLAGS) $(FW_CFLAGS) $(FW_INC) --specs=rdimon.specs -nostartfiles \
	  -T examples/firmware/mps2_an386.ld examples/firmware/startup.c $(FW_MAIN) \
	  $(FW_DIR)/$(MODEL)_infer.arm.o $(FW_DIR)/$(MODEL)_infer_int8.arm.o -o $@

# The profile build: the same code with -DCNN_PROFILE, whose hooks count
# instructions per op (examples/firmware/profile.awk prints the table).
$(FW_DIR)/%.prof.arm.o: $(GEN_DIR)/%.c $(GEN_DIR)/%.h | deps-firmware
	@mkdir -p $(@D)
	$(ARM_CC) $(ARM_FLAGS) $(FW_CFLAGS) -DCNN_PROFILE -c $< -o $@

$(FW_DIR)/firmware-prof.elf: examples/firmware/startup.c $(FW_MAIN) examples/firmware/mps2_an386.ld \
                        $(FW_DIR)/$(MODEL)_infer.prof.arm.o $(FW_DIR)/$(MODEL)_infer_int8.prof.arm.o $(FW_DIR)/digits.h
	$(ARM_CC) $(ARM_FLAGS) $(FW_CFLAGS) -DCNN_PROFILE $(FW_INC) --specs=rdimon.specs -nostartfiles \
	  -T examples/firmware/mps2_an386.ld examples/firmware/startup.c $(FW_MAIN) \
	  $(FW_DIR)/$(MODEL)_infer.prof.arm.o $(FW_DIR)/$(MODEL)_infer_int8.prof.arm.o -o $@

# The portable int8 row functions on the same target (-U__ARM_FEATURE_DSP):
# they must print the DSP build's bits too.
$(FW_DIR)/%.port.arm.o: $(GEN_DIR)/%.c $(GEN_DIR)/%.h | deps-firmware
	@mkdir -p $(@D)
	$(ARM_CC) $(ARM_FLAGS) $(FW_CFLAGS) -U__ARM_FEATURE_DSP -c $< -o $@

$(FW_DIR)/firmware-port.elf: examples/firmware/startup.c $(FW_MAIN) examples/firmware/mps2_an386.ld \
                        $(FW_DIR)/$(MODEL)_infer.arm.o $(FW_DIR)/$(MODEL)_infer_int8.port.arm.o $(FW_DIR)/digits.h
	$(ARM_CC) $(ARM_FLAGS) $(FW_CFLAGS) $(FW_INC) --specs=rdimon.specs -nostartfiles \
	  -T examples/firmware/mps2_an386.ld examples/firmware/startup.c $(FW_MAIN) \
	  $(FW_DIR)/$(MODEL)_infer.arm.o $(FW_DIR)/$(MODEL)_infer_int8.port.arm.o -o $@

# The same main and inference code on the host: the predictions to match.
$(FW_DIR)/firmware-host: $(FW_MAIN) $(FW_INFER) $(FW_DIR)/digits.h
	$(CC) $(FW_CFLAGS) $(FW_INC) $(FW_MAIN) $(FW_INFER) -o $@

# The DSP path of the int8 code on the host, on emulated ACLE intrinsics.
$(FW_DIR)/firmware-host-dsp: $(FW_MAIN) $(FW_INFER) $(FW_DIR)/digits.h examples/firmware/acle_host/arm_acle.h
	$(CC) $(FW_CFLAGS) $(FW_INC) -D__ARM_FEATURE_DSP=1 -Iexamples/firmware/acle_host $(FW_MAIN) $(FW_INFER) -o $@

firmware-test: $(FW_DIR)/firmware.elf $(FW_DIR)/firmware-prof.elf $(FW_DIR)/firmware-port.elf \
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
	@arm-none-eabi-size $(FW_DIR)/$(MODEL)_infer.arm.o $(FW_DIR)/$(MODEL)_infer_int8.arm.o $(FW_DIR)/firmware.elf
	@grep -v '^digit' $(FW_DIR)/qemu.txt
	@{ for v in float int8; do o=$(FW_DIR)/$(MODEL)_infer$$([ $$v = int8 ] && echo _int8).arm.o; \
	     arm-none-eabi-nm -S $$o | sed "s/^/nm $$v /"; \
	     arm-none-eabi-size $$o | awk -v v=$$v 'NR == 2 {print "size", v, $$1}'; done; \
	   awk '/^instructions per inference/ {print "total float", $$5; print "total int8", $$7}' $(FW_DIR)/qemu.txt; \
	   grep '^profile' $(FW_DIR)/qemu-prof.txt; } | awk -f examples/firmware/profile.awk
	@echo "firmware-test: $(FW_N) digits, QEMU (Cortex-M4) predictions and int8 score bits = host's (portable and emulated DSP path), and the portable path's on QEMU"

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
