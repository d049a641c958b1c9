using System.Net;
using System.Net.Sockets;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Plugin;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Plugin;

/// <summary>ipMasq's inputs: the master's name goes into rule text, and the backend is chosen in the caller's namespace.</summary>
public class MasqueradeTests : KernelTest
{
    /// <summary>
    /// Linux allows '"', ';' and '#' in interface names; in nft or iptables-restore rule text they would end or change
    /// the rule. With ipMasq such a master is refused (7, naming master) before any change, whether it is configured
    /// or found as the default route's device; without ipMasq the same master serves as any other.
    /// </summary>
    [Theory]
    [InlineData("ens\"10", true)]
    [InlineData("ens;10", true)]
    [InlineData("ens#10", false)]
    [InlineData("ens\"10", false)]
    public void With_ipMasq_a_master_whose_name_could_change_the_rules_is_refused(string master, bool configured)
    {
        using var node = new TestNode(masterName: master);
        if (!configured)
            node.Client.AddRoute(new RouteInfo(IpPrefix.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse("10.10.0.254"), LinkIndex = node.Master.Index });
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var config = cni.Config("oddmaster", "10.10.0.0/24").With("master", configured ? master : null).With("ipMasq", true);
        var before = NodeSnapshot.Take(cni, pod);

        string message = cni.Add(config, pod, "c1").FailedWith(7);
        Assert.StartsWith("master:", message);
        Assert.Contains(master, message);
        NodeSnapshot.Take(cni, pod).AssertSameAs(before, $"a refused ipMasq on master {master}");

        config.With("ipMasq", null);
        cni.Add(config, pod, "c1").Succeeded();
        Assert.Equal(node.Master.Index, pod.Client.GetLink("eth0").ParentIndex);
        cni.Del(config, pod, "c1").Succeeded();
    }

    [Fact]
    public void With_ipMasq_a_master_named_with_letters_digits_and_the_four_allowed_marks_is_used()
    {
        const string master = "e_1.x-y@z";
        using var node = new TestNode(masterName: master);
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var config = cni.Config("marks", "10.10.0.0/24").With("ipMasq", true);

        cni.Add(config, pod, "c1").Succeeded();
        Assert.Contains(NodeSnapshot.ReadNatRules(node.Namespace, AddressFamily.InterNetwork), rule => rule.Contains($"-o {master} -j RETURN"));
        cni.Del(config, pod, "c1").Succeeded();
    }

    /// <summary>
    /// The sandbox kernel is what the issue found on a node with kmod: nf_tables loads (nft lists tables) but has no
    /// ip family and no nat chain type. The backend is chosen by creating a NAT chain, so ADD falls back to the legacy
    /// tables, records that backend for the network, leaves no probe table behind, and DEL removes the rules there.
    /// Whether iptables-legacy-save ran before (it instantiates the legacy nat table) changes nothing.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void With_nf_tables_loaded_but_no_nat_chain_type_ipMasq_falls_back_to_the_legacy_tables(bool legacyTableTouchedFirst)
    {
        LoadModule("nf_tables");
        Assert.Contains("nf_tables ", File.ReadAllText("/proc/modules"));
        using var node = new TestNode();
        var listed = Programs.Run(node.Namespace, Programs.Locate("nft"), ["list", "tables"]);
        Assert.True(listed.Succeeded, $"nft list tables must work with nf_tables loaded: {listed}");
        if (legacyTableTouchedFirst)
            NodeSnapshot.ReadNatRules(node.Namespace, AddressFamily.InterNetwork);
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        var config = cni.Config("fallback", "10.10.0.0/24").With("ipMasq", true);

        var added = cni.Add(config, pod, "c1").Succeeded();
        var record = Directory.GetFiles(Path.Combine(cni.StateDir, "attachments", "fallback")).Single();
        Assert.Contains("\"NatBackend\":\"iptables-legacy\"", File.ReadAllText(record));
        Assert.Contains(NodeSnapshot.ReadNatRules(node.Namespace, AddressFamily.InterNetwork), rule => rule.Contains(Masquerade.ChainName("fallback")));
        var tables = Programs.Run(node.Namespace, Programs.Locate("nft"), ["list", "tables"]);
        Assert.True(tables.Succeeded && !tables.StdOut.Contains("ipvlan_cni", StringComparison.Ordinal), $"the probe left a table: {tables}");
        cni.Check(config, pod, "c1", added).Succeeded();

        cni.Del(config, pod, "c1").Succeeded();
        Assert.DoesNotContain(NodeSnapshot.ReadNatRules(node.Namespace, AddressFamily.InterNetwork), rule => rule.Contains(Masquerade.ChainName("fallback")));
    }

    /// <summary>A network's rules stay in the backend its records name, whatever the node would choose now.</summary>
    [Fact]
    public void A_recorded_backend_is_used_as_recorded()
    {
        Assert.Equal(Masquerade.IptablesLegacy, Masquerade.ForNetwork(Masquerade.IptablesLegacy).Backend);
        Assert.Equal(Masquerade.Nftables, Masquerade.ForNetwork(Masquerade.Nftables).Backend);
        using var node = new TestNode();
        Assert.Equal(Masquerade.IptablesLegacy, node.Namespace.Run(() => Masquerade.ForNetwork(null).Backend));
    }

    static void LoadModule(string module)
    {
        using var self = NetNamespace.OpenCurrent();
        var loaded = Programs.Run(self, Programs.Locate("busybox"), ["modprobe", module]);
        Assert.True(loaded.Succeeded, $"modprobe {module}: {loaded}");
    }
}
