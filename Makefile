# cryo — build, test, benchmark and fuzz entry points.
#   make            build bin/cryo (and libcryo.a)
#   make check      unit tests, then the end-to-end test suite (as root)
#   make bench      benchmarks (bench/)
#   make bench-criu-guest  cryo against criu in a 6.1 guest under qemu (CRIU_BENCH_ARGS='-s 1024 -n 5')
#   make fuzz       build and run the fuzz targets (clang, libFuzzer)
#   make SAN=address ...   the same under AddressSanitizer (into build-asan/)
#   make install    PREFIX (/usr/local), DESTDIR, and BINDIR, LIBDIR, INCLUDEDIR, MANDIR
#   make install-caps  install, then file capabilities on cryo (setcap) for non-root use
#   make uninstall  removes what install put there (same variables)

CC ?= gcc
SAN ?=
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

ifeq ($(SAN),)
BUILD ?= build
SANFLAGS :=
else
BUILD ?= build-$(SAN)
SANFLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer
endif

WARN := -Wall -Wextra -Werror -Wno-missing-field-initializers
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(CPPFLAGS) $(CFLAGS) $(WARN) $(SANFLAGS) -D_GNU_SOURCE \
	-DCRYO_VERSION='"$(VERSION)"' -Iinclude -Isrc -Isrc/remote -I$(BUILD)/proto
LDFLAGS += $(SANFLAGS)
LDLIBS := -lprotobuf-c -lpthread -ldl

LIB_SRCS := $(filter-out src/cli.c,$(wildcard src/*.c)) $(wildcard src/remote/*.c)
LIB_OBJS := $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/remote/blob.o \
	$(BUILD)/obj/cryo.pb-c.o
PROTO_H := $(BUILD)/proto/cryo.pb-c.h
PIC_OBJS := $(LIB_OBJS:$(BUILD)/obj/%=$(BUILD)/pic/%)
ABI := $(shell sed -n 's/^\#define CRYO_ABI_VERSION \([0-9]*\)$$/\1/p' include/cryo.h)
SONAME := libcryo.so.$(ABI)
# Only the plain build makes the shared library: nothing uses a sanitized one.
SHARED_LIB := $(if $(SAN),,$(BUILD)/$(SONAME))

# Installation. cryo goes to sbin: it is a tool for root (it ptraces and restores
# other users' processes), as Debian's criu does; the man page is in section 8.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

TEST_SRCS := $(wildcard tests/t_*.c)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)

.PHONY: all check unit e2e bench bench-criu-guest fuzz clean tests check-xkernel install install-caps uninstall
all: $(BUILD)/bin/cryo $(BUILD)/libcryo.a $(SHARED_LIB) bin/cryo

bin/cryo: $(BUILD)/bin/cryo
	@mkdir -p bin
	@ln -sf ../$(BUILD)/bin/cryo bin/cryo

$(BUILD)/proto/cryo.pb-c.c $(BUILD)/proto/cryo.pb-c.h: proto/cryo.proto
	@mkdir -p $(BUILD)/proto
	protoc-c --proto_path=proto --c_out=$(BUILD)/proto proto/cryo.proto

$(BUILD)/obj/cryo.pb-c.o: $(BUILD)/proto/cryo.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(CFLAGS) $(SANFLAGS) -I$(BUILD)/proto -c $< -o $@

$(BUILD)/obj/%.o: src/%.c $(PROTO_H) $(wildcard src/*.h src/remote/*.h include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/remote/blob.o: src/remote/blob.S src/remote/layout.h
	@mkdir -p $(dir $@)
	$(CC) -Isrc/remote -c $< -o $@

$(BUILD)/libcryo.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

# The shared library: the same sources compiled again with -fPIC into $(BUILD)/pic/,
# exporting only the public API (src/libcryo.map). Its soname's number is
# CRYO_ABI_VERSION from include/cryo.h.
$(BUILD)/pic/cryo.pb-c.o: $(BUILD)/proto/cryo.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(CPPFLAGS) $(CFLAGS) $(SANFLAGS) -fPIC -I$(BUILD)/proto -c $< -o $@

$(BUILD)/pic/%.o: src/%.c $(PROTO_H) $(wildcard src/*.h src/remote/*.h include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -c $< -o $@

$(BUILD)/pic/remote/blob.o: src/remote/blob.S src/remote/layout.h
	@mkdir -p $(dir $@)
	$(CC) -Isrc/remote -fPIC -c $< -o $@

$(BUILD)/$(SONAME): $(PIC_OBJS) src/libcryo.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/libcryo.map \
		-Wl,--no-undefined $(LDFLAGS) $(PIC_OBJS) $(LDLIBS) -o $@
	@ln -sf $(SONAME) $(BUILD)/libcryo.so

$(BUILD)/bin/cryo: $(BUILD)/obj/cli.o $(BUILD)/libcryo.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Test programs are plain programs: no sanitizer (they are the processes dumped).
TEST_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Itests
$(BUILD)/tests/t_%: tests/t_%.c tests/tlib.c tests/tlib.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $< tests/tlib.c -o $@ -lpthread

# The streaming test's client variant is the same source built with STREAM_CLIENT.
$(BUILD)/tests/t_tcp_stream_client: tests/t_tcp_stream.c

# t_regs and t_regs_spin keep their register probes in assembly.
REGS_TESTS := $(BUILD)/tests/t_regs $(BUILD)/tests/t_regs_spin
$(REGS_TESTS): $(BUILD)/tests/%: tests/%.c tests/t_regs.c tests/t_regs_probe.S tests/t_regs.h \
		tests/go_early.h tests/tlib.c tests/tlib.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $< tests/t_regs_probe.S tests/tlib.c -o $@ -lpthread

$(BUILD)/tests/harness: tests/harness.c tests/harness_bad.c tests/harness_real.c tests/harness_servers.c \
		tests/harness_pkg.c tests/harness_stream.c tests/harness_stream_bad.c \
		tests/harness_user.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(LDFLAGS)

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libcryo.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< $(BUILD)/libcryo.a $(LDFLAGS) $(LDLIBS) -o $@

# It reads the ruleset through libnftables itself, not through cryo's loader.
$(BUILD)/unit/unit_netlock_live: LDLIBS += -lnftables

# img_edit damages one field of an image and seals it again (harness_bad.c).
$(BUILD)/tests/img_edit: tests/img_edit.c $(BUILD)/libcryo.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< $(BUILD)/libcryo.a $(LDFLAGS) $(LDLIBS) -o $@

tests: all $(TEST_BINS) $(BUILD)/tests/harness $(UNIT_BINS) $(BUILD)/tests/img_edit

unit: $(UNIT_BINS)
	@for t in $(UNIT_BINS); do $$t || exit 1; done

check: tests
	$(BUILD)/tests/harness --cryo $(BUILD)/bin/cryo --tests $(BUILD)/tests --unit $(BUILD)/unit --real tests/real \
		--src . $(HARNESS_ARGS)

# As root; BENCH_ARGS passes options (e.g. BENCH_ARGS='-n 3 -s 512'), see bench/bench.c.
bench: all
	$(MAKE) -C bench BUILD=$(abspath $(BUILD)) SANFLAGS='$(SANFLAGS)' BENCH_ARGS='$(BENCH_ARGS)'

fuzz:
	$(MAKE) -C fuzz

# A directory under PREFIX as ${prefix}/..., so that pkg-config --define-prefix works.
under_prefix = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))

# Every file installed, relative to DESTDIR; uninstall removes exactly these.
INSTALLED := $(BINDIR)/cryo $(LIBDIR)/$(SONAME) $(LIBDIR)/libcryo.so $(LIBDIR)/libcryo.a \
	$(INCLUDEDIR)/cryo.h $(PKGCONFIGDIR)/cryo.pc $(MANDIR)/man8/cryo.8

# cryo.pc is made from cryo.pc.in at each install, for this PREFIX and LIBDIR.
install: all $(BUILD)/$(SONAME)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BUILD)/bin/cryo $(DESTDIR)$(BINDIR)/cryo
	install -m 0644 $(BUILD)/$(SONAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libcryo.so
	install -m 0644 $(BUILD)/libcryo.a $(DESTDIR)$(LIBDIR)/libcryo.a
	install -m 0644 include/cryo.h $(DESTDIR)$(INCLUDEDIR)/cryo.h
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(call under_prefix,$(LIBDIR))|' \
		-e 's|@INCLUDEDIR@|$(call under_prefix,$(INCLUDEDIR))|' \
		-e 's|@VERSION@|$(VERSION)|' cryo.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/cryo.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/cryo.pc
	install -m 0644 man/cryo.8 $(DESTDIR)$(MANDIR)/man8/cryo.8

# File capabilities on the installed cryo, for users who are not root: they dump and
# restore their own processes only (docs/USAGE.md, "Without root"). Needs setcap.
CRYO_CAPS := cap_checkpoint_restore,cap_sys_ptrace+ep
install-caps: install
	setcap $(CRYO_CAPS) $(DESTDIR)$(BINDIR)/cryo

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))

clean:
	rm -rf build build-* bin

# Restore across kernels for real: Debian's 6.1 and 6.12 kernels under qemu (TCG).
check-xkernel: all
	tools/xkernel/check.sh

# cryo against criu (whose 3.17 fails on this host's kernel) on the same workload, in
# Debian's 6.1 kernel under qemu TCG: the bench's mem case, ratios cryo/criu.
bench-criu-guest: all
	tools/xkernel/criu_bench.sh $(CRIU_BENCH_ARGS)
