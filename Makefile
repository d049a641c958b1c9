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
APT_PACKAGES := user-mode-linux busybox-static kmod iptables nftables iproute2 iputils-ping containernetworking-plugins clang zlib1g-dev strace dnsmasq-base etcd-server
# The package, its check and the image: dpkg-deb's .deb checked by lintian, manual pages from --help, podman on runc.
APT_PACKAGES += lintian help2man podman runc
# The agent links OpenSSL statically for TLS to etcd (a static executable cannot dlopen libssl): its archives and cmake for .NET's shim.
APT_PACKAGES += libssl-dev cmake
SANDBOX := tools/sandbox/run
RESULTS := artifacts/test-results
UNIT_TESTS := Netlink Network Cni Ipam Plugin Install Dhcp Explain ClusterIpam
# One version for the executable (Directory.Build.props reads the file), the .deb and the image tag.
VERSION := $(shell cat VERSION)
DEB := artifacts/ipvlan-cni_$(VERSION)_amd64.deb
IMAGE := localhost/ipvlan-cni:$(VERSION)
IMAGE_ARCHIVE := artifacts/ipvlan-cni_$(VERSION).oci.tar
MANIFEST_CHECK := tools/manifest-check

.PHONY: all deps restore build publish deb image manifest-deps test unit-test kernel-test soak demo bench clean

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
	$(DOTNET) publish src/IpvlanCni.Explain.Tool/IpvlanCni.Explain.Tool.csproj -c Release -r linux-x64 -nologo -o artifacts/publish
	$(DOTNET) publish src/IpvlanCni.Install.Tool/IpvlanCni.Install.Tool.csproj -c Release -r linux-x64 -nologo -o artifacts/publish
	mkdir -p $(dir $(PLUGIN))
	cp artifacts/publish/ipvlan-cni $(PLUGIN)
	cp artifacts/publish/ipvlan-cni-explain artifacts/publish/ipvlan-cni-install $(dir $(PLUGIN))
	ln -f $(PLUGIN) $(dir $(PLUGIN))ipvlan-cni-ipam
	$(DOTNET) publish src/IpvlanCni.AgentHost/IpvlanCni.AgentHost.csproj -c Release -r linux-x64 -nologo -o artifacts/publish-agent
	cp artifacts/publish-agent/ipvlan-cni-agent $(dir $(PLUGIN))ipvlan-cni-agent
	@echo "plugin: $(PLUGIN) ($$(stat -c %s $(PLUGIN)) bytes)"
	$(DOTNET) publish src/IpvlanCni/IpvlanCni.csproj -c Faults -r linux-x64 -nologo -o artifacts/test/publish
	mkdir -p $(dir $(TEST_PLUGIN))
	cp artifacts/test/publish/ipvlan-cni $(TEST_PLUGIN)

# The Debian package: the executable in /usr/lib/cni (and its IPAM name), the agent's unit, examples, manual pages.
deb: publish
	packaging/deb/build $(PLUGIN) $(VERSION) $(DEB)

# The scratch image, in podman storage of its own under artifacts/podman, also saved as an OCI archive.
image: publish
	packaging/image/build $(PLUGIN) $(VERSION) $(IMAGE) $(IMAGE_ARCHIVE)

# The manifest validator's npm packages, exactly as package-lock.json pins them.
manifest-deps: $(MANIFEST_CHECK)/node_modules/.package-lock.json
$(MANIFEST_CHECK)/node_modules/.package-lock.json: $(MANIFEST_CHECK)/package-lock.json
	npm ci --prefix $(MANIFEST_CHECK) --no-audit --no-fund --loglevel=error

test: deps build publish deb image manifest-deps
	rm -rf $(RESULTS)
	status=0; $(MAKE) -k --no-print-directory unit-test kernel-test || status=$$?; tools/test-summary $(RESULTS); exit $$status

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
# The cluster IPAM storm (three-member etcd, dozens of simulated nodes, leaders killed and paused) for this long;
# `make test` runs it for 25 s.
ETCD_STORM_SECONDS ?= 300
soak: deps build publish
	IPVLANCNI_ETCD_STORM_SECONDS=$(ETCD_STORM_SECONDS) $(DOTNET) test tests/IpvlanCni.ClusterIpam.Tests --no-build -c Release \
		--logger "console;verbosity=detailed" --filter "FullyQualifiedName~StormTests"
	$(SANDBOX) --env IPVLANCNI_PLUGIN=$(CURDIR)/$(PLUGIN) --env IPVLANCNI_FAULT_PLUGIN=$(CURDIR)/$(TEST_PLUGIN) --env IPVLANCNI_SOAK_CYCLES=$(SOAK_CYCLES) --env IPVLANCNI_CRASH_KILLS=$(CRASH_KILLS) --env IPVLANCNI_CRASH_STRIDE=1 \
		$(DOTNET) test tests/IpvlanCni.Kernel.Tests --no-build -c Release --logger "console;verbosity=normal" \
		--filter "FullyQualifiedName~Reliability.SoakTests|FullyQualifiedName~Reliability.CrashConsistencyTests.Sigkill|FullyQualifiedName~Reliability.SyscallCrashTests"

demo: deps build publish
	$(SANDBOX) --env IPVLANCNI_PLUGIN=$(CURDIR)/$(PLUGIN) $(DOTNET) artifacts/build/bin/IpvlanCni.Demo/release/IpvlanCni.Demo.dll

bench: deps build publish
	$(SANDBOX) --env IPVLANCNI_PLUGIN=$(CURDIR)/$(PLUGIN) $(DOTNET) artifacts/build/bin/IpvlanCni.Bench/release/IpvlanCni.Bench.dll

clean:
	rm -rf artifacts
