using System.Net.Sockets;
using System.Net;
using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Plugin;

/// <summary>Modes, flags and the routes each mode gets, read back from the kernel and proven with ping.</summary>
public class ModeTests : KernelTest
{
    public static TheoryData<string, IpvlanMode, string, IpvlanFlag> ModesAndFlags()
    {
        var data = new TheoryData<string, IpvlanMode, string, IpvlanFlag>();
        foreach (var (mode, modeValue) in new[] { ("l2", IpvlanMode.L2), ("l3", IpvlanMode.L3), ("l3s", IpvlanMode.L3S) })
            foreach (var (flag, flagValue) in new[] { ("bridge", IpvlanFlag.Bridge), ("private", IpvlanFlag.Private), ("vepa", IpvlanFlag.Vepa) })
                data.Add(mode, modeValue, flag, flagValue);
        return data;
    }

    /// <summary>
    /// Two pods on one master: the slave runs the configured mode and flag, and only "bridge" lets them reach each
    /// other (private drops slave-to-slave traffic; vepa sends it out of the master, and a dummy master hairpins nothing).
    /// </summary>
    [Theory]
    [MemberData(nameof(ModesAndFlags))]
    public void The_slave_runs_the_configured_mode_and_flag_and_only_bridge_lets_pods_talk(string mode, IpvlanMode modeValue, string flag, IpvlanFlag flagValue)
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("modes", "10.10.0.0/24", mode).With("flag", flag);
        var a = node.AddPod();
        var b = node.AddPod();
        cni.Add(config, a, "ca").Succeeded();
        var addressB = cni.Add(config, b, "cb").Succeeded().Address();

        var eth0 = a.Client.GetLink("eth0");
        Assert.Equal("ipvlan", eth0.Kind);
        Assert.Equal(modeValue, eth0.IpvlanMode);
        Assert.Equal(flagValue, eth0.IpvlanFlag);
        Assert.True(eth0.IsUp);
        Assert.True(a.Client.GetLink("lo").IsUp);
        bool expectReply = flagValue == IpvlanFlag.Bridge;
        Assert.Equal(expectReply, a.Ping(addressB, seconds: expectReply ? 2 : 1));
    }

    [Fact]
    public void L2_default_route_goes_via_the_ipam_gateway()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        cni.Add(cni.Config("l2routes", "10.10.0.0/24", "l2"), pod, "c1").Succeeded();

        var route = pod.Route("0.0.0.0/0") ?? throw new Xunit.Sdk.XunitException("no default route in the pod");
        Assert.Equal(IPAddress.Parse("10.10.0.1"), route.Gateway);
        Assert.Equal(pod.Client.GetLink("eth0").Index, route.LinkIndex);
    }

    [Theory]
    [InlineData("l3")]
    [InlineData("l3s")]
    public void L3_default_route_is_a_device_route(string mode)
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var pod = node.AddPod();
        cni.Add(cni.Config("l3routes", "10.20.1.0/24", mode), pod, "c1").Succeeded();

        var route = pod.Route("0.0.0.0/0") ?? throw new Xunit.Sdk.XunitException("no default route in the pod");
        Assert.Null(route.Gateway);
        Assert.Equal(RouteScope.Link, route.Scope);
        Assert.Equal(pod.Client.GetLink("eth0").Index, route.LinkIndex);
    }

    /// <summary>In l3 the master routes between its slaves, so pods of two subnets on one master reach each other.</summary>
    [Fact]
    public void L3_pods_in_different_subnets_on_one_master_ping_each_other()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var one = cni.Config("l3one", "10.20.1.0/24", "l3");
        var two = cni.Config("l3two", "10.20.2.0/24", "l3");
        var a = node.AddPod();
        var b = node.AddPod();
        var addressA = cni.Add(one, a, "ca").Succeeded().Address();
        var addressB = cni.Add(two, b, "cb").Succeeded().Address();

        Assert.True(new IpPrefix(IPAddress.Parse("10.20.1.0"), 24).Contains(addressA));
        Assert.True(new IpPrefix(IPAddress.Parse("10.20.2.0"), 24).Contains(addressB));
        Assert.Equal(a.Client.GetLink("eth0").ParentIndex, node.Master.Index);
        Assert.True(a.Ping(addressB), $"{addressA} cannot reach {addressB}");
        Assert.True(b.Ping(addressA), $"{addressB} cannot reach {addressA}");
        Assert.True(Programs.TcpConnect(a.Namespace, b.Namespace, addressB, 5000), $"no TCP from {addressA} to {addressB}");
    }

    /// <summary>l2 pods on one master carry TCP too (ARP, then a connection through the master's port).</summary>
    [Fact]
    public void L2_pods_talk_tcp()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = cni.Config("l2tcp", "10.10.0.0/24");
        var a = node.AddPod();
        var b = node.AddPod();
        cni.Add(config, a, "ca").Succeeded();
        var addressB = cni.Add(config, b, "cb").Succeeded().Address();
        Assert.True(Programs.TcpConnect(a.Namespace, b.Namespace, addressB, 5000));
    }
}
