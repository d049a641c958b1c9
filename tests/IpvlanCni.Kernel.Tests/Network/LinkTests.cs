using System.Net.NetworkInformation;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Netlink;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Network;

public sealed class LinkTests : KernelTest
{
    [Theory]
    [InlineData(IpvlanMode.L2, IpvlanFlag.Bridge)]
    [InlineData(IpvlanMode.L3, IpvlanFlag.Bridge)]
    [InlineData(IpvlanMode.L3S, IpvlanFlag.Bridge)]
    [InlineData(IpvlanMode.L2, IpvlanFlag.Private)]
    [InlineData(IpvlanMode.L2, IpvlanFlag.Vepa)]
    [InlineData(IpvlanMode.L3, IpvlanFlag.Private)]
    public void Ipvlan_modes_and_flags_read_back(IpvlanMode mode, IpvlanFlag flag)
    {
        using var node = new TestNode();
        var master = node.Master;
        node.Client.CreateLink(new IpvlanLinkSpec("ipv0", master.Index, mode, flag) { Mtu = 1400 });
        var link = node.Client.GetLink("ipv0");
        Assert.Equal("ipvlan", link.Kind);
        Assert.Equal(mode, link.IpvlanMode);
        Assert.Equal(flag, link.IpvlanFlag);
        Assert.Equal(master.Index, link.ParentIndex);
        Assert.Equal(master.MacAddress, link.MacAddress);
        Assert.Equal(1400, link.Mtu);
        Assert.False(link.IsUp);
        Assert.Equal(link, node.Client.TryGetLink(link.Index));

        node.Client.DeleteLink(link.Index);
        Assert.Null(node.Client.TryGetLink("ipv0"));
    }

    [Fact]
    public void Dummy_vlan_macvlan_and_veth_create_read_delete()
    {
        using var node = new TestNode();
        var master = node.Master;
        node.Client.CreateLink(new DummyLinkSpec("dum1"));
        node.Client.CreateLink(new VlanLinkSpec("ens10.42", master.Index, 42));
        node.Client.CreateLink(new VethLinkSpec("veth-a", "veth-b"));

        var dummy = node.Client.GetLink("dum1");
        Assert.Equal("dummy", dummy.Kind);
        Assert.Equal(0, dummy.ParentIndex);

        var vlan = node.Client.GetLink("ens10.42");
        Assert.Equal("vlan", vlan.Kind);
        Assert.Equal((ushort)42, vlan.VlanId);
        Assert.Equal(master.Index, vlan.ParentIndex);

        var a = node.Client.GetLink("veth-a");
        var b = node.Client.GetLink("veth-b");
        Assert.Equal("veth", a.Kind);
        Assert.Equal(b.Index, a.ParentIndex); // a veth's IFLA_LINK is its peer
        Assert.Equal(a.Index, b.ParentIndex);

        var names = node.Client.ListLinks().Select(l => l.Name).ToHashSet();
        Assert.Superset(new HashSet<string> { "lo", "ens10", "dum1", "ens10.42", "veth-a", "veth-b" }, names);

        // macvlan on a master without ipvlan slaves works; a master cannot carry both kinds.
        node.Client.CreateLink(new MacvlanLinkSpec("mac0", dummy.Index));
        Assert.Equal("macvlan", node.Client.GetLink("mac0").Kind);
        node.Client.CreateLink(new IpvlanLinkSpec("ipv0", master.Index, IpvlanMode.L2));
        var mixed = Assert.ThrowsAny<NetlinkException>(() => node.Client.CreateLink(new MacvlanLinkSpec("mac1", master.Index)));
        Assert.Equal(16 /* EBUSY */, mixed.Errno);

        foreach (var name in new[] { "mac0", "ens10.42", "dum1", "veth-a" })
            node.Client.DeleteLink(node.Client.GetLink(name).Index);
        Assert.Null(node.Client.TryGetLink("veth-b")); // deleting one end removes the pair
    }

    [Fact]
    public void Veth_peer_goes_straight_into_another_namespace()
    {
        using var node = new TestNode();
        var pod = node.AddPod();
        node.Client.CreateLink(new VethLinkSpec("host0", "peer0") { PeerNamespace = pod.Namespace });
        Assert.NotNull(node.Client.TryGetLink("host0"));
        Assert.Null(node.Client.TryGetLink("peer0"));
        Assert.Equal("veth", pod.Client.GetLink("peer0").Kind);
    }

    [Fact]
    public void One_change_renames_sets_mtu_noarp_and_up_then_moves_namespace()
    {
        using var node = new TestNode();
        var pod = node.AddPod();
        node.Client.CreateLink(new DummyLinkSpec("d0"));
        int index = node.Client.GetLink("d0").Index;
        int before = node.Client.RequestCount;
        node.Client.ChangeLink(index, new LinkChange { Name = "renamed0", Mtu = 1280, NoArp = true, Up = true });
        Assert.Equal(before + 1, node.Client.RequestCount);

        var link = node.Client.GetLink("renamed0");
        Assert.Equal(index, link.Index);
        Assert.Equal(1280, link.Mtu);
        Assert.True(link.NoArp);
        Assert.True(link.IsUp);
        Assert.Equal(OperationalState.Unknown, link.OperationalState); // dummies report "unknown" when up

        node.Client.ChangeLink(index, new LinkChange { Up = false, NoArp = false });
        link = node.Client.GetLink("renamed0");
        Assert.False(link.IsUp);
        Assert.False(link.NoArp);
        Assert.Equal(OperationalState.Down, link.OperationalState);

        node.Client.ChangeLink(index, new LinkChange { Namespace = pod.Namespace, Name = "moved0" });
        Assert.Null(node.Client.TryGetLink("renamed0"));
        Assert.Equal("dummy", pod.Client.GetLink("moved0").Kind);
    }

    [Fact]
    public void Kernel_errors_carry_errno_and_extended_ack()
    {
        using var node = new TestNode();
        var master = node.Master;
        node.Client.CreateLink(new IpvlanLinkSpec("ipv0", master.Index, IpvlanMode.L2));

        var exists = Assert.Throws<NetlinkException>(() => node.Client.CreateLink(new IpvlanLinkSpec("ipv0", master.Index, IpvlanMode.L2)));
        Assert.True(exists.IsExists);
        Assert.Contains("ipv0", exists.Operation);

        var missing = Assert.Throws<NetlinkException>(() => node.Client.DeleteLink(999_999));
        Assert.True(missing.IsNotFound);
        var noParent = Assert.Throws<NetlinkException>(() => node.Client.CreateLink(new IpvlanLinkSpec("ipv1", 999_999, IpvlanMode.L2)));
        Assert.True(noParent.IsNotFound);
        Assert.Throws<NetlinkException>(() => node.Client.GetLink("nosuch0"));
        Assert.Null(node.Client.TryGetLink("nosuch0"));

        // 8021q rejects id 5000 with an extended-ack message.
        var badVlan = Assert.Throws<NetlinkException>(() => node.Client.CreateLink(new VlanLinkSpec("v0", master.Index, 5000)));
        Assert.Equal(34 /* ERANGE */, badVlan.Errno);
        Assert.False(string.IsNullOrEmpty(badVlan.ExtendedAck));
        Assert.Contains(badVlan.ExtendedAck!, badVlan.Message);
    }

    [Fact]
    public void Pods_l3_mode_slaves_reach_each_other()
    {
        using var node = new TestNode();
        var pod1 = node.AddPod();
        var pod2 = node.AddPod();
        int i = 0;
        foreach (var pod in new[] { pod1, pod2 })
        {
            i++;
            node.Client.CreateLink(new IpvlanLinkSpec($"tmp{i}", node.Master.Index, IpvlanMode.L3) { Namespace = pod.Namespace });
            int index = pod.Client.GetLink($"tmp{i}").Index;
            pod.Client.ChangeLink(index, new LinkChange { Name = "eth0", Up = true });
            pod.Client.AddAddress(new AddressInfo(index, IpPrefix.Parse($"10.20.0.{i}/32")));
            pod.Client.AddRoute(new RouteInfo(IpPrefix.Parse("10.20.0.0/24")) { LinkIndex = index, Scope = RouteScope.Link });
        }
        Assert.Equal(IpvlanMode.L3, pod1.Client.GetLink("eth0").IpvlanMode);
        Assert.True(pod1.Ping(System.Net.IPAddress.Parse("10.20.0.2")));
    }
}
