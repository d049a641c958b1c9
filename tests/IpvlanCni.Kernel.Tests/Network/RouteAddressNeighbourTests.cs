using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Netlink;
using IpvlanCni.Network;

namespace IpvlanCni.Kernel.Tests.Network;

public sealed class RouteAddressNeighbourTests : KernelTest
{
    static (TestNode Node, int Index) NodeWithUpDummy()
    {
        var node = new TestNode();
        node.Client.CreateLink(new DummyLinkSpec("d0"));
        int index = node.Client.GetLink("d0").Index;
        node.Client.ChangeLink(index, new LinkChange { Up = true });
        return (node, index);
    }

    [Fact]
    public void Ipv4_and_ipv6_addresses_add_list_delete()
    {
        var (node, index) = NodeWithUpDummy();
        using var _ = node;
        var v4 = new AddressInfo(index, IpPrefix.Parse("192.168.5.7/24"));
        var v6 = new AddressInfo(index, IpPrefix.Parse("fd00:5::7/64")) { Flags = AddressFlags.NoDad };
        var host = new AddressInfo(index, IpPrefix.Parse("127.5.0.1/8")) { Scope = RouteScope.Host };
        node.Client.AddAddress(v4);
        node.Client.AddAddress(v6);
        node.Client.AddAddress(host);

        var all = node.Client.ListAddresses(linkIndex: index);
        Assert.Contains(all, a => a.Prefix.Equals(v4.Prefix) && a.Scope == RouteScope.Universe);
        var readV6 = Assert.Single(all, a => a.Prefix.Equals(v6.Prefix));
        Assert.True(readV6.Flags.HasFlag(AddressFlags.NoDad));
        Assert.False(readV6.Flags.HasFlag(AddressFlags.Tentative)); // NODAD: usable at once
        Assert.Contains(all, a => a.Prefix.Equals(host.Prefix) && a.Scope == RouteScope.Host);
        Assert.All(node.Client.ListAddresses(AddressFamily.InterNetworkV6, index), a => Assert.Equal(AddressFamily.InterNetworkV6, a.Prefix.Family));
        Assert.DoesNotContain(node.Client.ListAddresses(AddressFamily.InterNetwork), a => a.LinkIndex == index && !a.Prefix.IsIPv4);

        Assert.True(Assert.Throws<NetlinkException>(() => node.Client.AddAddress(v4)).IsExists);
        node.Client.DeleteAddress(v4);
        node.Client.DeleteAddress(v6);
        Assert.DoesNotContain(node.Client.ListAddresses(linkIndex: index), a => a.Prefix.Equals(v4.Prefix) || a.Prefix.Equals(v6.Prefix));
        Assert.ThrowsAny<NetlinkException>(() => node.Client.DeleteAddress(v4));
    }

    [Fact]
    public void Routes_with_gateway_onlink_prefsrc_metric_and_metrics_in_a_big_table()
    {
        var (node, index) = NodeWithUpDummy();
        using var _ = node;
        node.Client.AddAddress(new AddressInfo(index, IpPrefix.Parse("10.30.0.2/24")));
        var route = new RouteInfo(IpPrefix.Parse("0.0.0.0/0"))
        {
            Gateway = IPAddress.Parse("10.99.0.1"),
            LinkIndex = index,
            OnLink = true,
            Table = 1000,
            PreferredSource = IPAddress.Parse("10.30.0.2"),
            Metric = 50,
            Mtu = 1400,
            AdvertisedMss = 1360,
        };
        node.Client.AddRoute(route);
        var read = Assert.Single(node.Client.ListRoutes(AddressFamily.InterNetwork, 1000));
        Assert.Equal(route with { Protocol = read.Protocol, NextHops = read.NextHops }, read);
        Assert.Equal((byte)4, read.Protocol);
        Assert.DoesNotContain(node.Client.ListRoutes(AddressFamily.InterNetwork), r => r.Gateway?.Equals(route.Gateway) == true);

        Assert.True(Assert.Throws<NetlinkException>(() => node.Client.AddRoute(route)).IsExists);
        node.Client.ReplaceRoute(route with { Metric = 50, Mtu = 1300 });
        Assert.Equal(1300, Assert.Single(node.Client.ListRoutes(AddressFamily.InterNetwork, 1000)).Mtu);

        node.Client.DeleteRoute(read);
        Assert.Empty(node.Client.ListRoutes(AddressFamily.InterNetwork, 1000));

        var host = new RouteInfo(IpPrefix.Parse("10.40.0.9/32")) { LinkIndex = index, Scope = RouteScope.Link };
        node.Client.AddRoute(host);
        var readHost = Assert.Single(node.Client.ListRoutes(AddressFamily.InterNetwork), r => r.Destination.Equals(host.Destination));
        Assert.Equal(RouteScope.Link, readHost.Scope);
        Assert.Null(readHost.Gateway);
    }

    [Fact]
    public void Ipv6_address_and_route()
    {
        var (node, index) = NodeWithUpDummy();
        using var _ = node;
        node.Client.AddAddress(new AddressInfo(index, IpPrefix.Parse("fd00:1::2/64")) { Flags = AddressFlags.NoDad });
        var route = new RouteInfo(IpPrefix.Parse("fd00:2::/64")) { Gateway = IPAddress.Parse("fd00:1::1"), LinkIndex = index, Metric = 1024 };
        node.Client.AddRoute(route);
        var read = Assert.Single(node.Client.ListRoutes(AddressFamily.InterNetworkV6), r => r.Destination.Equals(route.Destination));
        Assert.Equal(route.Gateway, read.Gateway);
        Assert.Equal(index, read.LinkIndex);
        Assert.Equal(1024u, read.Metric);
        Assert.Contains(node.Client.ListRoutes(AddressFamily.InterNetworkV6), r => r.Destination.Equals(IpPrefix.Parse("fd00:1::/64")));
        node.Client.DeleteRoute(read);
        Assert.DoesNotContain(node.Client.ListRoutes(AddressFamily.InterNetworkV6), r => r.Destination.Equals(route.Destination));
    }

    [Fact]
    public void Ecmp_route_reads_back_its_next_hops()
    {
        var (node, first) = NodeWithUpDummy();
        using var _ = node;
        node.Client.CreateLink(new DummyLinkSpec("d1"));
        int second = node.Client.GetLink("d1").Index;
        node.Client.ChangeLink(second, new LinkChange { Up = true });
        node.Client.AddAddress(new AddressInfo(first, IpPrefix.Parse("10.1.0.2/24")));
        node.Client.AddAddress(new AddressInfo(second, IpPrefix.Parse("10.2.0.2/24")));

        var route = new RouteInfo(IpPrefix.Parse("10.50.0.0/16"))
        {
            NextHops = [new NextHop(IPAddress.Parse("10.1.0.1"), first), new NextHop(IPAddress.Parse("10.2.0.1"), second) { Weight = 3 }],
        };
        node.Client.AddRoute(route);
        var read = Assert.Single(node.Client.ListRoutes(AddressFamily.InterNetwork), r => r.Destination.Equals(route.Destination));
        Assert.Equal(route.NextHops, read.NextHops);
        Assert.Equal(0, read.LinkIndex);
        node.Client.DeleteRoute(read);
        Assert.DoesNotContain(node.Client.ListRoutes(AddressFamily.InterNetwork), r => r.Destination.Equals(route.Destination));
    }

    [Fact]
    public void Permanent_neighbours_add_list_delete()
    {
        var (node, index) = NodeWithUpDummy();
        using var _ = node;
        var mac = PhysicalAddress.Parse("02-42-0A-0A-00-0B");
        var v4 = new NeighbourInfo(index, IPAddress.Parse("10.60.0.11"), mac);
        var v6 = new NeighbourInfo(index, IPAddress.Parse("fd00:60::11"), mac);
        node.Client.AddNeighbour(v4);
        node.Client.AddNeighbour(v4); // CREATE|REPLACE: idempotent
        node.Client.AddNeighbour(v6);

        var all = node.Client.ListNeighbours(linkIndex: index);
        Assert.Contains(v4, all);
        Assert.Contains(v6, all);
        Assert.Equal([v4], node.Client.ListNeighbours(AddressFamily.InterNetwork, index));

        node.Client.DeleteNeighbour(v4);
        Assert.DoesNotContain(v4, node.Client.ListNeighbours(linkIndex: index));
        Assert.True(Assert.Throws<NetlinkException>(() => node.Client.DeleteNeighbour(v4)).IsNotFound);
    }
}
