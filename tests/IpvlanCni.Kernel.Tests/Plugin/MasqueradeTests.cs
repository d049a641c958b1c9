using System.Net;
using System.Net.Sockets;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Plugin;

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
    /// The backend choice reads the legacy tables of the calling thread's namespace (an in-process caller runs on a
    /// thread inside the node's), not those of the process's main thread: two namespaces, one with the nat table in
    /// use, give two answers.
    /// </summary>
    [Fact]
    public void Legacy_tables_are_looked_up_in_the_calling_threads_namespace()
    {
        using var withTables = new TestNode();
        using var without = new TestNode();
        NodeSnapshot.ReadNatRules(withTables.Namespace, AddressFamily.InterNetwork); // iptables-legacy-save instantiates the nat table

        Assert.True(withTables.Namespace.Run(Masquerade.LegacyTablesInUse), "the nat table in use in this namespace went unseen");
        Assert.False(without.Namespace.Run(Masquerade.LegacyTablesInUse), "another namespace's tables were seen");
        Assert.IsType<IptablesMasquerade>(withTables.Namespace.Run(Masquerade.ForNode));
    }
}
