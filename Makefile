# crisp — build, test, run.
#
#   make               build everything into build/ (hardened, -Werror)
#   make SAN=1         the same with ASan+UBSan, into build-san/
#   make run           build and run crispd in the foreground on its embedded default
#   make check         install test dependencies, build with SAN=1, run every test
#   make fuzz          build the libFuzzer targets (clang) into build-fuzz/
#   make bench         benchmarks (not tests)
#
# Sources are found by folder: common/ ipc/ policy/ and generated proto code
# form libcrisp.a; each daemon folder is one binary; tests/unit/test_*.c are
# cmocka programs; tests/fuzz/fuzz_*.c are libFuzzer targets.

SAN ?= 0
ifeq ($(SAN),1)
B ?= build-san
else
B ?= build
endif

CC ?= cc
PKGS := libprotobuf-c libsodium libseccomp libcap-ng inih libnghttp2 jansson libarchive libcurl sqlite3 gpgme libcrypto libssl zlib
# LSM libraries: only execd (which labels containers) links them, so no
# other role carries their code or their load-time constructors.
LSM_PKGS := libselinux libapparmor
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(LSM_PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LSM_LIBS := $(shell pkg-config --libs $(LSM_PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wno-unused-parameter \
	-Wmissing-prototypes -Wstrict-prototypes -Wvla -Wimplicit-fallthrough
# -std=c11 (not gnu11): protoc-c output has fields named "linux", a macro
# under gnu dialects.  _GNU_SOURCE gives us the Linux APIs.
STD := -std=c11 -D_GNU_SOURCE
HARDEN := -fstack-protector-strong -fstack-clash-protection -fPIE -fcf-protection
HARDEN_LD := -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack

ifeq ($(SAN),1)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-DCRISP_SANITIZED=1
SAN_LD := -fsanitize=address,undefined
else
OPT := -O2 -g -D_FORTIFY_SOURCE=2
SAN_LD :=
endif

CFLAGS_ALL := $(STD) $(WARN) $(OPT) $(HARDEN) -I. -I$(B)/gen $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL := $(HARDEN_LD) $(SAN_LD) $(LDFLAGS)
LIBS := $(PKG_LIBS) $(LDLIBS)

PROTOS := $(wildcard proto/*.proto)
PROTO_C := $(patsubst proto/%.proto,$(B)/gen/proto/%.pb-c.c,$(PROTOS))
PROTO_H := $(PROTO_C:.c=.h)

LIB_SRC := $(wildcard common/*.c ipc/*.c policy/*.c)
LIB_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRC)) $(patsubst $(B)/gen/%.c,$(B)/obj/gen/%.o,$(PROTO_C))

DAEMONS := crispd frontd imaged execd netd
BIN_crispd := $(B)/bin/crispd
BIN_frontd := $(B)/bin/crisp-frontd
BIN_imaged := $(B)/bin/crisp-imaged
BIN_execd := $(B)/bin/crisp-execd
BIN_netd := $(B)/bin/crisp-netd
BINS := $(foreach d,$(DAEMONS),$(BIN_$(d)))
# crisp-monitor (monitor/): one per running container, so it links none of
# the above; see its rules below.
BIN_monitor := $(B)/bin/crisp-monitor
MON_SRC := $(wildcard monitor/*.c) common/fdio.c
MON_LIB_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(filter-out monitor/main.c,$(MON_SRC)))
BINS += $(BIN_monitor)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(patsubst tests/tools/%.c,$(B)/tests/tools/%,$(TOOL_SRC))

.PHONY: all deps deps-test run check unit e2e fuzz fuzz-run bench clean install
.DEFAULT_GOAL := all
.SECONDARY: $(PROTO_C) $(PROTO_H)

all: deps
	@$(MAKE) --no-print-directory $(BINS) $(UNIT_BIN) $(TOOL_BIN)

deps:
	@sh mk/deps.sh build

deps-test:
	@sh mk/deps.sh test

$(B)/gen/proto/%.pb-c.c $(B)/gen/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(B)/gen/proto
	protoc-c --c_out=$(B)/gen $<

$(B)/obj/gen/%.o: $(B)/gen/%.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(OPT) $(HARDEN) -Wall -Werror -I$(B)/gen $(PKG_CFLAGS) -c $< -o $@

$(B)/obj/%.o: %.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(B)/libcrisp.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# execd re-validates every CRI request it is sent with frontd's validator
# (pure code): frontd's checks are a convenience, execd's are the boundary.
EXTRA_execd := $(B)/obj/frontd/validate.o $(B)/obj/frontd/validate_rules.o
LIBS_execd := $(LSM_LIBS)
# execd unpacks layers (execd/layers.c) with the hostile-tar-safe extractor.
EXTRA_execd += $(B)/obj/imaged/unpack.o
# execd opens the CRI log (monitor/cri_log.c) and can run a monitor's loop
# in its own image when crisp-monitor cannot be executed.
EXTRA_execd += $(MON_LIB_OBJ)
# execd compiles its default AppArmor profile in (.incbin in execd/lsm.c).
$(B)/obj/execd/lsm.o: contrib/apparmor/crisp-default
# crispd --verify-audit checks imaged's audit log (pure code, no ipc).
EXTRA_crispd := $(B)/obj/imaged/audit.o

define daemon_rule
$$(BIN_$(1)): $$(patsubst %.c,$(B)/obj/%.o,$$(wildcard $(1)/*.c)) $$(EXTRA_$(1)) $(B)/libcrisp.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$^ $$(LIBS) $$(LIBS_$(1))
endef
$(foreach d,$(DAEMONS),$(eval $(call daemon_rule,$(d))))

# crisp-monitor: static, musl when musl-gcc is there (a few hundred kB of
# RSS per container instead of megabytes), else static glibc; static-pie
# when musl ships rcrt1.o.  Only libc: no pkg-config flags, no libcrisp.
# SAN=1 builds it like the others (sanitizers need the dynamic runtime).
ifeq ($(SAN),1)
$(BIN_monitor): $(patsubst %.c,$(B)/obj/%.o,$(MON_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^
else
MUSL_GCC := $(shell command -v musl-gcc 2>/dev/null)
MUSL_LIB := $(if $(MUSL_GCC),$(dir $(shell sed -n 's/.*-specs "\([^"]*\)".*/\1/p' $(MUSL_GCC))))
MON_CC := $(if $(MUSL_GCC),$(MUSL_GCC),$(CC))
MON_OBJ := $(patsubst %.c,$(B)/obj-static/%.o,$(MON_SRC))
$(B)/obj-static/%.o: %.c
	@mkdir -p $(dir $@)
	$(MON_CC) $(STD) $(WARN) $(OPT) $(HARDEN) -I. $(CFLAGS) -MMD -MP -c $< -o $@
ifneq ($(wildcard $(MUSL_LIB)rcrt1.o),)
$(BIN_monitor): $(MON_OBJ)
	@mkdir -p $(dir $@)
	gcc -static-pie -nostdlib $(HARDEN_LD:-pie=) $(LDFLAGS) -o $@ $(MUSL_LIB)rcrt1.o $(MUSL_LIB)crti.o \
		$$(gcc -print-file-name=crtbeginS.o) $^ $(MUSL_LIB)libc.a $$(gcc -print-libgcc-file-name) \
		$$(gcc -print-file-name=crtendS.o) $(MUSL_LIB)crtn.o
else
$(BIN_monitor): $(MON_OBJ)
	@mkdir -p $(dir $@)
	$(MON_CC) $(if $(MUSL_GCC),-static,-static-pie) $(HARDEN_LD:-pie=) $(LDFLAGS) -o $@ $^
endif
endif

# Unit tests link the library plus the daemon objects they test (every
# daemon object except its main.c).
DAEMON_LIB_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(filter-out %/main.c,$(wildcard $(addsuffix /*.c,$(DAEMONS)))))
DAEMON_LIB_OBJ += $(MON_LIB_OBJ)

# Through an archive, so a test links only the daemon objects it uses.
$(B)/libdaemons.a: $(DAEMON_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/tests/test_%: tests/unit/test_%.c $(B)/libdaemons.a $(B)/libcrisp.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $^ $(LIBS) $(LSM_LIBS) -lcmocka

$(B)/tests/tools/%: tests/tools/%.c $(B)/libcrisp.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

run: all
	$(B)/bin/crispd --log-level info $(RUNFLAGS)

# ---- tests -----------------------------------------------------------------
# `make check` is the whole suite: unit tests (cmocka), fuzz targets for a
# bounded time (libFuzzer), end-to-end tests (pytest against the real socket),
# all against the sanitizer build.
FUZZ_SECONDS ?= 15

check: deps-test
	@$(MAKE) --no-print-directory SAN=1 all
	@$(MAKE) --no-print-directory SAN=1 unit
	@$(MAKE) --no-print-directory fuzz-run
	@$(MAKE) --no-print-directory SAN=1 e2e

unit: $(UNIT_BIN)
	@sh tests/run-unit.sh $(UNIT_BIN)

e2e:
	cd tests/e2e && CRISP_BUILD=$(abspath $(B)) /usr/bin/python3 -m pytest -v -p no:cacheprovider $(PYTEST_ARGS) .

# ---- fuzzing (clang, libFuzzer + ASan + UBSan) -----------------------------
FB := build-fuzz
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(FB)/%,$(FUZZ_SRC))

fuzz: deps-test
	@$(MAKE) --no-print-directory B=$(FB) CC=clang \
		OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -DCRISP_FUZZING=1" \
		HARDEN="-fPIE" HARDEN_LD="-pie" $(FUZZ_BIN)

$(FB)/fuzz_%: tests/fuzz/fuzz_%.c $(B)/libdaemons.a $(B)/libcrisp.a
	$(CC) $(CFLAGS_ALL) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS) $(LSM_LIBS)

fuzz-run: fuzz
	@sh tests/run-fuzz.sh $(FB) $(FUZZ_SECONDS) $(FUZZ_BIN)

bench: all
	@sh tests/bench/run.sh $(abspath $(B))

# Installs the binaries side by side (crispd finds its roles next to itself),
# crispd on PATH through a symlink, and the systemd unit.
PREFIX ?= /usr/local
DESTDIR ?=
install: all
	install -d $(DESTDIR)$(PREFIX)/libexec/crisp $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)/etc/crisp/crisp.conf.d $(DESTDIR)/lib/systemd/system
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/libexec/crisp/
	ln -sf ../libexec/crisp/crispd $(DESTDIR)$(PREFIX)/bin/crispd
	sed 's#/usr/local#$(PREFIX)#g' contrib/crisp.service > $(DESTDIR)/lib/systemd/system/crisp.service
	test -e $(DESTDIR)/etc/crisp/crisp.conf || $(B)/bin/crispd --print-default-config > $(DESTDIR)/etc/crisp/crisp.conf

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(B)/obj $(B)/obj-static -name '*.d' 2>/dev/null)
