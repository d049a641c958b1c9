using System.Diagnostics;
using IpvlanCni.Network;

namespace IpvlanCni.Plugin.Tests;

/// <summary>
/// The nftables NAT backend against the host's real nftables, inside a throw-away network namespace (the sandbox
/// kernel has no nftables ip family; the host kernel has, but no ipvlan). Needs root and nft (`make deps`).
/// </summary>
public sealed class NftablesMasqueradeTests : IDisposable
{
    const string Nft = "/usr/sbin/nft";
    static readonly IpPrefix[] Subnets = [IpPrefix.Parse("10.1.0.0/24"), IpPrefix.Parse("10.2.0.0/24"), IpPrefix.Parse("fd00:1::/64")];

    readonly string _name = $"nft{Random.Shared.Next(0x1000000):x6}";
    readonly NetNamespace _ns;
    readonly NftablesMasquerade _nat = new();
    readonly string _table = Masquerade.ChainName("net1").ToLowerInvariant().Replace('-', '_');

    public NftablesMasqueradeTests()
    {
        Assert.True(File.Exists(Nft), $"{Nft} is missing: run `make deps` (it installs nftables)");
        _ns = NetNamespace.CreateNamed(_name);
    }

    /// <summary>Runs on a thread inside the namespace, so the nft processes the backend starts run there too.</summary>
    T InNamespace<T>(Func<T> action) => _ns.Run(action);

    void InNamespace(Action action) => _ns.Run(action);

    string Ruleset() => InNamespace(() =>
    {
        using var nft = Process.Start(new ProcessStartInfo(Nft, ["list", "ruleset"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string output = nft.StandardOutput.ReadToEnd();
        string error = nft.StandardError.ReadToEnd();
        nft.WaitForExit();
        Assert.True(nft.ExitCode == 0, $"nft list ruleset: {error}");
        return output;
    });

    [Fact]
    public void Apply_writes_one_table_per_family_with_the_iptables_rules_and_is_idempotent()
    {
        InNamespace(() => _nat.Apply("net1", "ens10", Subnets));
        string ruleset = Ruleset();

        Assert.Contains($"table ip {_table} {{", ruleset);
        Assert.Contains($"table ip6 {_table} {{", ruleset);
        Assert.Contains("type nat hook postrouting priority srcnat; policy accept;", ruleset);
        Assert.Contains("ip saddr != { 10.1.0.0/24, 10.2.0.0/24 } return", ruleset);
        Assert.Contains("oifname \"ens10\" return", ruleset);
        Assert.Contains("ip daddr { 10.1.0.0/24, 10.2.0.0/24 } return", ruleset);
        Assert.Contains("ip6 saddr != fd00:1::/64 return", ruleset);
        Assert.Contains("ip6 daddr fd00:1::/64 return", ruleset);
        Assert.Equal(2, ruleset.Split('\n').Count(l => l.Trim() == "masquerade"));
        Assert.True(InNamespace(() => _nat.IsApplied("net1", "ens10", Subnets)));

        InNamespace(() => _nat.Apply("net1", "ens10", Subnets));
        Assert.Equal(ruleset, Ruleset());
    }

    [Fact]
    public void Apply_replaces_the_rules_whole_and_drops_a_family_the_network_no_longer_has()
    {
        InNamespace(() => _nat.Apply("net1", "ens10", Subnets));
        InNamespace(() => _nat.Apply("net1", "ens10", [Subnets[1]]));
        string ruleset = Ruleset();

        Assert.Contains("ip saddr != 10.2.0.0/24 return", ruleset);
        Assert.DoesNotContain("10.1.0.0/24", ruleset);
        Assert.DoesNotContain($"table ip6 {_table}", ruleset);
        Assert.True(InNamespace(() => _nat.IsApplied("net1", "ens10", [Subnets[1]])));
        Assert.False(InNamespace(() => _nat.IsApplied("net1", "ens10", Subnets)));
    }

    [Fact]
    public void Is_applied_is_false_once_the_chain_is_flushed_or_the_table_deleted()
    {
        InNamespace(() => _nat.Apply("net1", "ens10", Subnets));
        InNamespace(() => Process.Start(Nft, ["flush", "chain", "ip", _table, "postrouting"]).WaitForExit());
        Assert.False(InNamespace(() => _nat.IsApplied("net1", "ens10", Subnets)));

        InNamespace(() => _nat.Apply("net1", "ens10", Subnets));
        InNamespace(() => Process.Start(Nft, ["delete", "table", "ip6", _table]).WaitForExit());
        Assert.False(InNamespace(() => _nat.IsApplied("net1", "ens10", Subnets)));
    }

    [Fact]
    public void Remove_leaves_an_empty_ruleset_and_may_run_twice()
    {
        InNamespace(() => _nat.Apply("net1", "ens10", Subnets));
        InNamespace(() => _nat.Apply("other", "ens10", [IpPrefix.Parse("10.9.0.0/24")]));

        InNamespace(() => _nat.Remove("net1", Subnets));
        InNamespace(() => _nat.Remove("net1", Subnets));

        string ruleset = Ruleset();
        Assert.DoesNotContain(_table, ruleset);
        Assert.Contains("10.9.0.0/24", ruleset); // another network's table is not ours to touch
        Assert.False(InNamespace(() => _nat.IsApplied("net1", "ens10", Subnets)));
        InNamespace(() => _nat.Remove("other", []));
        Assert.Equal("", Ruleset().Trim());
    }

    /// <summary>The host kernel can create NAT chains: the proof picks nftables and its probe table is gone.</summary>
    [Fact]
    public void A_node_whose_nftables_can_create_a_nat_chain_gets_the_nftables_backend_and_the_probe_leaves_nothing()
    {
        Assert.IsType<NftablesMasquerade>(InNamespace(Masquerade.ForNode));
        Assert.Equal("", Ruleset().Trim());
        Assert.Equal(Masquerade.Nftables, InNamespace(() => Masquerade.ForNetwork(null).Backend));
        Assert.IsType<IptablesMasquerade>(Masquerade.ForNetwork(Masquerade.IptablesLegacy));
    }

    public void Dispose()
    {
        _ns.Dispose();
        NetNamespace.DeleteNamed(_name);
    }
}
