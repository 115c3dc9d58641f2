# Install stowage as one self-contained executable (no Node.js needed on the target), laid out the
# way StateCraft's own `make install` is, so seed 000's paths work:
#   npm ci && npm run dist          # (a release ships dist/ already built)
#   make install PREFIX=/usr/local  # DESTDIR is honoured for packaging
#   npm run dist -- --arch arm64 && make install ARCH=arm64 DESTDIR=/mnt/pi-root   # another arch
# puts the executable at $(PREFIX)/bin/stowage with a symlink per command (statecraft, rest-server,
# ...: the executable lists them itself, so a new command needs no change here), the statecraft
# library and state scripts at $(PREFIX)/lib/statecraft/, and the native bcrypt addon at
# $(PREFIX)/lib/stowage/bcrypt.node (loaded from there, so a noexec /tmp does not matter).
PREFIX ?= /usr/local
DESTDIR ?=
ARCH ?= $(shell uname -m | sed -e 's/^x86_64$$/x64/' -e 's/^aarch64$$/arm64/')
EXE := dist/stowage-linux-$(ARCH)
SEA := dist/sea-$(ARCH)
BIN := $(DESTDIR)$(PREFIX)/bin
LIB := $(DESTDIR)$(PREFIX)/lib

.PHONY: build dist install uninstall

build:
	npm ci
	npm run build

dist:
	npm run dist

install:
	@test -x "$(EXE)" -a -f "$(SEA)/commands" || { echo "$(EXE) is missing: run 'npm ci && npm run dist -- --arch $(ARCH)' first (a release has it)" >&2; exit 1; }
	install -d "$(BIN)" "$(LIB)/statecraft" "$(LIB)/stowage"
	install -m 0755 "$(EXE)" "$(BIN)/stowage"
	for command in $$(cat "$(SEA)/commands"); do ln -sfn stowage "$(BIN)/$$command"; done
	cp -R lib/statecraft/. "$(LIB)/statecraft/"
	install -m 0644 "$(SEA)/bcrypt.node" "$(LIB)/stowage/bcrypt.node"

uninstall:
	@test -x "$(BIN)/stowage" || { echo "nothing installed at $(BIN)/stowage" >&2; exit 1; }
	for command in $$(find "$(BIN)" -maxdepth 1 -lname stowage -printf '%f\n'); do rm -f "$(BIN)/$$command"; done
	rm -f "$(BIN)/stowage"
	rm -rf "$(LIB)/statecraft" "$(LIB)/stowage"
