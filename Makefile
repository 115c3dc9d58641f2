# Install stowage the way StateCraft's own `make install` lays itself out, so the seed's paths work:
#   make install PREFIX=/usr/local
# puts the package in $(PREFIX)/lib/stowage, the statecraft library (and its state scripts) at
# $(PREFIX)/lib/statecraft/state-scripts/, and every command in $(PREFIX)/bin/.
# Needs Node.js >= 22.12 as `node` on PATH at run time. DESTDIR is honoured for packaging.
PREFIX ?= /usr/local
DESTDIR ?=
APP := $(DESTDIR)$(PREFIX)/lib/stowage
COMMANDS := stowage statecraft snapshotter rest-server wafers backrest-sidecar

.PHONY: build install uninstall

build:
	npm ci
	npm run build

install:
	@test -f dist/cli/statecraft.js || { echo "run 'make build' (or npm ci) first" >&2; exit 1; }
	install -d "$(APP)" "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(PREFIX)/lib"
	cp -R dist lib package.json package-lock.json "$(APP)/"
	cd "$(APP)" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null
	ln -sfn stowage/lib/statecraft "$(DESTDIR)$(PREFIX)/lib/statecraft"
	for command in $(COMMANDS); do ln -sf "../lib/stowage/dist/cli/$$command.js" "$(DESTDIR)$(PREFIX)/bin/$$command"; done

uninstall:
	for command in $(COMMANDS); do rm -f "$(DESTDIR)$(PREFIX)/bin/$$command"; done
	rm -f "$(DESTDIR)$(PREFIX)/lib/statecraft"
	rm -rf "$(APP)"
