using System.Net;
using System.Net.NetworkInformation;
using IpvlanCni.Netlink;
using IpvlanCni.Network.Codecs;

namespace IpvlanCni.Network.Tests;

public sealed class CodecTests
{
    // RTM_NEWLINK reply to RTM_GETLINK "ipv0" captured from Linux 6.1 in the sandbox: an ipvlan in l3s mode with the
    // private flag, index 3, on master index 2 (a dummy), MAC 1e:9c:4f:11:f4:64, MTU 1500, down.
    internal const string KernelIpvlanLink =
        "4C040000100000006322000003352A880000010003000000021000000000000009000300697076300000000008000D00E80300000500100002000000050011000000000008000400DC050000080032004400000008003300FFFF000008001B000000000008001E000000000008003D000000000008001F000100000008002800FFFF0000080029000000010008003A000000010008003B000000010008003C00FFFF00000500210001000000090006006E6F6F7000000000080023000000000008002F00000000000800300000000000050027000000000004002A0024000E0000000000000000000000000000000000000000000000000000000000000000000A0001001E9C4F11F46400000A000200FFFFFFFFFFFF000004002A00CC0017000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000640007000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000C002B000500020000000000240012000B0001006970766C616E0000140002000600010002000000060002000100000008000500020000000A0036001E9C4F11F4640000BC011A008C00020088000100000000000000000000000000010000000100000001000000010000000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000010270000E803000000000000000000000000000000000000010000002C010A00080001000000000014000500FFFF000071030000508C0000E8030000F00002000000000040000000DC05000001000000010000000100000001000000FFFFFFFFA00F0000E803000000000000803A0900805101000300000058020000100000000000000001000000010000000100000060EA000000000000000000000000000000000000000000000000000001000000000000000000000010270000E8030000010000000000000000000000010000000000000000000000010000000000000000000000000000000000000080EE360000000000000000000100000000000000000000000000000000000000000000000004000000000000FFFF0000FFFFFFFF01000000000000000000000014000700000000000000000000000000000000000500080000000000";

    // RTM_NEWADDR from an address dump of the same link after adding 10.1.2.3/24.
    const string KernelAddress =
        "50000000140022006522000003352A880218800003000000080001000A010203080002000A010203090003006970763000000000080008008000000014000600FFFFFFFFFFFFFFFF7103000071030000";

    static byte[] PayloadOf(string hex)
    {
        var r = new MessageReader(Convert.FromHexString(hex));
        Assert.True(r.Next());
        return r.Payload.ToArray();
    }

    static byte[] PayloadOf(NetlinkWriter w)
    {
        try
        {
            return w.Message[NetlinkAlign.MessageHeaderLength..].ToArray();
        }
        finally
        {
            w.Dispose();
        }
    }

    [Fact]
    public void A_real_kernel_ipvlan_link_decodes()
    {
        var link = LinkCodec.Decode(PayloadOf(KernelIpvlanLink));
        Assert.Equal(new LinkInfo
        {
            Index = 3,
            Name = "ipv0",
            Kind = "ipvlan",
            ParentIndex = 2,
            MacAddress = PhysicalAddress.Parse("1E-9C-4F-11-F4-64"),
            Mtu = 1500,
            IsUp = false,
            NoArp = false,
            OperationalState = OperationalState.Down,
            IpvlanMode = IpvlanMode.L3S,
            IpvlanFlag = IpvlanFlag.Private,
        }, link);
    }

    [Fact]
    public void A_real_kernel_address_decodes()
    {
        var address = AddressCodec.Decode(PayloadOf(KernelAddress));
        Assert.Equal(new AddressInfo(3, IpPrefix.Parse("10.1.2.3/24")) { Flags = AddressFlags.Permanent }, address);
    }

    [Fact]
    public void Every_truncation_or_corruption_of_kernel_bytes_throws_only_decode_exceptions()
    {
        foreach (var hex in new[] { KernelIpvlanLink, KernelAddress })
        {
            var payload = PayloadOf(hex);
            for (int length = 0; length < payload.Length; length++)
                DecodeAll(payload[..length]);
            var random = new Random(1234);
            for (int round = 0; round < 2000; round++)
            {
                var corrupt = (byte[])payload.Clone();
                for (int flips = random.Next(1, 4); flips > 0; flips--)
                    corrupt[random.Next(corrupt.Length)] = (byte)random.Next(256);
                DecodeAll(corrupt);
            }
        }

        static void DecodeAll(byte[] bytes)
        {
            foreach (var decode in new Action<byte[]>[]
                     {
                         b => LinkCodec.Decode(b), b => AddressCodec.Decode(b), b => RouteCodec.Decode(b), b => NeighbourCodec.Decode(b),
                     })
            {
                try
                {
                    decode(bytes);
                }
                catch (NetlinkDecodeException)
                {
                }
            }
        }
    }

    [Fact]
    public void Ipvlan_create_request_bytes()
    {
        // What "ip link add ipv0 link <2> type ipvlan mode l3s private" sends, minus iproute2's extras.
        var w = LinkCodec.Create(new IpvlanLinkSpec("ipv0", 2, IpvlanMode.L3S, IpvlanFlag.Private) { Mtu = 1400 });
        Assert.Equal(NetlinkMessageFlags.Create | NetlinkMessageFlags.Excl, w.Flags);
        Assert.Equal(
            "00000000000000000000000000000000" + // ifinfomsg
            "09000300" + "69707630" + "00000000" + // IFLA_IFNAME
            "08000400" + "78050000" +             // IFLA_MTU 1400
            "08000500" + "02000000" +             // IFLA_LINK 2
            "24001200" + "0B000100" + "6970766C616E0000" + "14000200" + "06000100" + "02000000" + "06000200" + "01000000",
            Convert.ToHexString(PayloadOf(w)));
    }

    [Fact]
    public void Change_sets_only_the_flags_it_names()
    {
        var payload = PayloadOf(LinkCodec.Change(9, new LinkChange { Up = true, NoArp = false, Name = "eth0", Mtu = 9000 }));
        var header = Netlink.Route.LinkHeader.Read(payload);
        Assert.Equal(9, header.Index);
        Assert.Equal(Netlink.Route.InterfaceFlags.Up, header.Flags);
        Assert.Equal(Netlink.Route.InterfaceFlags.Up | Netlink.Route.InterfaceFlags.NoArp, header.Change);
        var decoded = LinkCodec.Decode(payload);
        Assert.Equal(("eth0", 9000, true), (decoded.Name, decoded.Mtu, decoded.IsUp));

        var nothing = Netlink.Route.LinkHeader.Read(PayloadOf(LinkCodec.Change(9, new LinkChange { Mtu = 1280 })));
        Assert.Equal(default, nothing.Change);
    }

    [Fact]
    public void Vlan_and_veth_requests_decode_as_the_kernel_would_report_them()
    {
        var vlan = LinkCodec.Decode(PayloadOf(LinkCodec.Create(new VlanLinkSpec("ens10.7", 2, 7))));
        Assert.Equal(("vlan", (ushort?)7, 2), (vlan.Kind, vlan.VlanId, vlan.ParentIndex));
        var veth = LinkCodec.Decode(PayloadOf(LinkCodec.Create(new VethLinkSpec("a", "b"))));
        Assert.Equal("veth", veth.Kind);
    }

    public static TheoryData<RouteInfo> Routes => new()
    {
        new RouteInfo(IpPrefix.Parse("0.0.0.0/0")) { Gateway = IPAddress.Parse("10.0.0.1"), LinkIndex = 3 },
        new RouteInfo(IpPrefix.Parse("10.9.0.0/16"))
        {
            Gateway = IPAddress.Parse("192.168.1.1"), LinkIndex = 4, OnLink = true, Table = 1000, Scope = RouteScope.Universe,
            PreferredSource = IPAddress.Parse("192.168.1.5"), Metric = 100, Mtu = 1400, AdvertisedMss = 1360,
        },
        new RouteInfo(IpPrefix.Parse("10.9.8.7/32")) { LinkIndex = 2, Scope = RouteScope.Link, Protocol = 3 },
        new RouteInfo(IpPrefix.Parse("fd00:1::/64")) { Gateway = IPAddress.Parse("fe80::1"), LinkIndex = 2, Metric = 1024 },
        new RouteInfo(IpPrefix.Parse("10.50.0.0/16"))
        {
            NextHops = [new NextHop(IPAddress.Parse("10.1.0.1"), 2), new NextHop(IPAddress.Parse("10.2.0.1"), 3) { Weight = 5, OnLink = true }],
        },
        new RouteInfo(IpPrefix.Parse("::/0")) { NextHops = [new NextHop(IPAddress.Parse("fd00::1"), 2), new NextHop(null, 3)] },
    };

    [Theory]
    [MemberData(nameof(Routes))]
    public void Routes_round_trip(RouteInfo route)
    {
        // A request and the kernel's report share one layout (rtmsg + RTA_*), so decode(encode(x)) == x.
        var decoded = RouteCodec.Decode(PayloadOf(RouteCodec.Add(route, replace: false)));
        Assert.NotNull(decoded);
        Assert.Equal(route.NextHops, decoded.NextHops);
        Assert.Equal(route, decoded with { NextHops = route.NextHops });
    }

    [Fact]
    public void Route_delete_matches_any_scope_and_protocol_and_leaves_metrics_out()
    {
        var route = new RouteInfo(IpPrefix.Parse("10.9.0.0/16")) { LinkIndex = 2, Mtu = 1400, Scope = RouteScope.Link };
        var decoded = RouteCodec.Decode(PayloadOf(RouteCodec.Delete(route)))!;
        Assert.Equal(RouteScope.Nowhere, decoded.Scope);
        Assert.Equal(0, decoded.Protocol);
        Assert.Null(decoded.Mtu);
    }

    [Fact]
    public void Addresses_and_neighbours_round_trip()
    {
        foreach (var address in new[]
                 {
                     new AddressInfo(4, IpPrefix.Parse("10.1.1.5/24")),
                     new AddressInfo(4, IpPrefix.Parse("fd00::5/64")) { Flags = AddressFlags.NoDad, Scope = RouteScope.Universe },
                     new AddressInfo(1, IpPrefix.Parse("127.0.0.1/8")) { Scope = RouteScope.Host },
                 })
            Assert.Equal(address, AddressCodec.Decode(PayloadOf(AddressCodec.Add(address))));

        var mac = PhysicalAddress.Parse("02-00-00-00-00-01");
        foreach (var neighbour in new[] { new NeighbourInfo(3, IPAddress.Parse("10.0.0.9"), mac), new NeighbourInfo(3, IPAddress.Parse("fd00::9"), mac) })
            Assert.Equal(neighbour, NeighbourCodec.Decode(PayloadOf(NeighbourCodec.Add(neighbour))));
    }
}
