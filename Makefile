# IpvlanCni: `make` builds the plugin, `make test` runs every test, `make demo` shows it working, `make bench`
# measures it against the reference plugin. Each installs what it needs first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := all

DOTNET ?= dotnet
export DOTNET_NOLOGO := 1
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE := 1

PLUGIN := artifacts/cni/bin/ipvlan-cni
# The same plugin with fault points (configuration Faults), for the kernel suite only: never shipped.
TEST_PLUGIN := artifacts/test/bin/ipvlan-cni
APT_PACKAGES := user-mode-linux busybox-static iptables nftables iproute2 iputils-ping containernetworking-plugins clang zlib1g-dev strace
SANDBOX := tools/sandbox/run
RESULTS := artifacts/test-results
UNIT_TESTS := Netlink Network Cni Ipam Plugin

.PHONY: all deps restore build publish test unit-test kernel-test soak demo bench clean

all: publish

# Debian packages the build, the sandbox and the comparison need; apt only runs when one is missing.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

restore:
	$(DOTNET) restore IpvlanCni.slnx

build: restore
	$(DOTNET) build IpvlanCni.slnx --no-restore -c Release -nologo -clp:NoSummary

publish: deps restore
	$(DOTNET) publish src/IpvlanCni/IpvlanCni.csproj -c Release -r linux-x64 -nologo -o artifacts/publish
	mkdir -p $(dir $(PLUGIN))
	cp artifacts/publish/ipvlan-cni $(PLUGIN)
	@echo "plugin: $(PLUGIN) ($$(stat -c %s $(PLUGIN)) bytes)"
	$(DOTNET) publish src/IpvlanCni/IpvlanCni.csproj -c Faults -r linux-x64 -nologo -o artifacts/test/publish
	mkdir -p $(dir $(TEST_PLUGIN))
	cp artifacts/test/publish/ipvlan-cni $(TEST_PLUGIN)

test: deps build publish
	rm -rf $(RESULTS)
	status=0; $(MAKE) --no-print-directory unit-test kernel-test || status=$$?; tools/test-summary $(RESULTS); exit $$status

unit-test:
	@status=0; for t in $(UNIT_TESTS); do \
		$(DOTNET) test tests/IpvlanCni.$$t.Tests --no-build -c Release --logger "trx;LogFileName=$$t.trx" --results-directory $(RESULTS) || status=1; \
	done; exit $$status

# One sandbox boot for the whole kernel suite. The suite refuses to run outside the sandbox.
kernel-test:
	$(SANDBOX) --env IPVLANCNI_PLUGIN=$(CURDIR)/$(PLUGIN) --env IPVLANCNI_FAULT_PLUGIN=$(CURDIR)/$(TEST_PLUGIN) \
		$(DOTNET) test tests/IpvlanCni.Kernel.Tests --no-build -c Release --logger "trx;LogFileName=Kernel.trx" --results-directory $(RESULTS)
	@test -f $(RESULTS)/Kernel.trx || { echo "kernel suite did not run in the sandbox"; exit 1; }

# Full-size reliability runs: 1000 in-process ADD/DEL cycles (descriptors, links, routes, store files must not grow)
# and 100 ADDs killed with SIGKILL at random moments, each cleaned up by DEL. `make test` runs 100 and 6. ADD, DEL and GC
# killed at every state-changing system call (`make test`: every third).
SOAK_CYCLES ?= 1000
CRASH_KILLS ?= 100
soak: deps build publish
	$(SANDBOX) --env IPVLANCNI_PLUGIN=$(CURDIR)/$(PLUGIN) --env IPVLANCNI_FAULT_PLUGIN=$(CURDIR)/$(TEST_PLUGIN) --env IPVLANCNI_SOAK_CYCLES=$(SOAK_CYCLES) --env IPVLANCNI_CRASH_KILLS=$(CRASH_KILLS) --env IPVLANCNI_CRASH_STRIDE=1 \
		$(DOTNET) test tests/IpvlanCni.Kernel.Tests --no-build -c Release --logger "console;verbosity=normal" \
		--filter "FullyQualifiedName~Reliability.SoakTests|FullyQualifiedName~Reliability.CrashConsistencyTests.Sigkill|FullyQualifiedName~Reliability.SyscallCrashTests"

demo: deps build publish
	$(SANDBOX) --env IPVLANCNI_PLUGIN=$(CURDIR)/$(PLUGIN) $(DOTNET) artifacts/build/bin/IpvlanCni.Demo/release/IpvlanCni.Demo.dll

bench: deps build publish
	$(SANDBOX) --env IPVLANCNI_PLUGIN=$(CURDIR)/$(PLUGIN) $(DOTNET) artifacts/build/bin/IpvlanCni.Bench/release/IpvlanCni.Bench.dll

clean:
	rm -rf artifacts
