using System.Net;
using System.Net.Sockets;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Network;

/// <summary>
/// The design note's first topology, built with our client only: a dummy master in a node namespace, two pods,
/// each with an l2 ipvlan slave created directly in the pod under a temporary name, renamed eth0, addressed, up.
/// </summary>
public sealed class IpvlanTopologyTests : KernelTest
{
    static LinkInfo AttachPod(TestNode node, TestPod pod, string address)
    {
        // Created from the node namespace (IFLA_LINK resolves there) straight into the pod (IFLA_NET_NS_FD).
        string temporary = UniqueName("tmp");
        node.Client.CreateLink(new IpvlanLinkSpec(temporary, node.Master.Index, IpvlanMode.L2) { Namespace = pod.Namespace });
        Assert.Null(node.Client.TryGetLink(temporary));
        var link = pod.Client.GetLink(temporary);
        pod.Client.ChangeLink(link.Index, new LinkChange { Name = "eth0", Up = true });
        pod.Client.AddAddress(new AddressInfo(link.Index, IpPrefix.Parse(address)));
        return pod.Client.GetLink("eth0");
    }

    [Fact]
    public void Two_l2_pods_on_one_master_ping_each_other_and_read_back_everything()
    {
        using var node = new TestNode();
        var master = node.Master;
        var pod1 = node.AddPod();
        var pod2 = node.AddPod();
        var eth1 = AttachPod(node, pod1, "10.10.0.11/24");
        var eth2 = AttachPod(node, pod2, "10.10.0.12/24");

        Assert.True(pod1.Ping(IPAddress.Parse("10.10.0.12")), "pod1 -> pod2");
        Assert.True(pod2.Ping(IPAddress.Parse("10.10.0.11")), "pod2 -> pod1");

        foreach (var (pod, eth, address) in new[] { (pod1, eth1, "10.10.0.11"), (pod2, eth2, "10.10.0.12") })
        {
            Assert.Equal("eth0", eth.Name);
            Assert.Equal("ipvlan", eth.Kind);
            Assert.Equal(IpvlanMode.L2, eth.IpvlanMode);
            Assert.Equal(IpvlanFlag.Bridge, eth.IpvlanFlag);
            Assert.Equal(master.Index, eth.ParentIndex);
            Assert.Equal(master.MacAddress, eth.MacAddress); // ipvlan slaves share the master's MAC
            Assert.Equal(master.Mtu, eth.Mtu);
            Assert.True(eth.IsUp);
            Assert.False(eth.NoArp);

            var addresses = pod.Client.ListAddresses(AddressFamily.InterNetwork, eth.Index);
            var only = Assert.Single(addresses);
            Assert.Equal(IpPrefix.Parse($"{address}/24"), only.Prefix);
            Assert.Equal(RouteScope.Universe, only.Scope);

            // The kernel adds the connected route for the address; protocol kernel (2), scope link.
            var routes = pod.Client.ListRoutes(AddressFamily.InterNetwork);
            var connected = Assert.Single(routes, r => r.Destination.Equals(IpPrefix.Parse("10.10.0.0/24")));
            Assert.Equal(eth.Index, connected.LinkIndex);
            Assert.Equal(RouteScope.Link, connected.Scope);
            Assert.Equal((byte)2, connected.Protocol);
            Assert.Equal(IPAddress.Parse(address), connected.PreferredSource);
        }

        // The pods see the master only by index (it lives in the node namespace).
        Assert.Null(pod1.Client.TryGetLink("ens10"));
    }
}
