using System.Net;
using IpvlanCni.Netlink.Route;

namespace IpvlanCni.Netlink.Tests;

public sealed class AttributeCodecTests
{
    [Fact]
    public void Writer_produces_the_kernel_layout_with_back_patched_nests()
    {
        var w = new NetlinkWriter(NetlinkMessageType.NewLink, NetlinkMessageFlags.Create | NetlinkMessageFlags.Excl);
        try
        {
            new LinkHeader(0, 0, 0, 0, 0).Write(w.Reserve(LinkHeader.Size));
            w.PutString(LinkAttribute.Name, "eth0");
            int info = w.BeginNested(LinkAttribute.LinkInfo);
            w.PutString(LinkInfoAttribute.Kind, "ipvlan");
            int data = w.BeginNested(LinkInfoAttribute.Data);
            w.PutUInt16(IpvlanAttribute.Mode, 1);
            w.PutUInt16(IpvlanAttribute.Flags, 0);
            w.EndNested(data);
            w.EndNested(info);
            Assert.Equal(
                "50000000" + "1000" + "0006" + "00000000" + "00000000" +            // nlmsghdr: len 80, RTM_NEWLINK, CREATE|EXCL
                "00000000000000000000000000000000" +                             // ifinfomsg
                "09000300" + "65746830" + "00000000" +                           // IFLA_IFNAME "eth0\0" + pad
                "24001200" +                                                     // IFLA_LINKINFO, 36 bytes
                "0B000100" + "6970766C616E0000" +                                //   IFLA_INFO_KIND "ipvlan\0" + pad
                "14000200" +                                                     //   IFLA_INFO_DATA, 20 bytes
                "06000100" + "01000000" +                                        //     IFLA_IPVLAN_MODE l3 + pad
                "06000200" + "00000000",                                         //     IFLA_IPVLAN_FLAGS bridge + pad
                Convert.ToHexString(w.Message));
        }
        finally
        {
            w.Dispose();
        }
    }

    [Fact]
    public void Writer_grows_past_its_first_buffer_and_reads_back()
    {
        using var w = new NetlinkWriter(NetlinkMessageType.NewRoute, NetlinkMessageFlags.None, capacity: 64);
        for (uint i = 0; i < 200; i++)
            w.PutUInt32(RouteAttribute.Priority, i);
        int nest = w.BeginNested(RouteAttribute.Metrics, nestedFlag: true);
        w.PutAddress(RouteMetricAttribute.Mtu, IPAddress.Parse("fd00::1"));
        w.EndNested(nest);

        var r = new AttributeReader(w.Message[NetlinkAlign.MessageHeaderLength..]);
        for (uint i = 0; i < 200; i++)
        {
            Assert.True(r.Next());
            Assert.Equal(RouteAttribute.Priority, r.TypeAs<RouteAttribute>());
            Assert.Equal(i, r.GetUInt32());
        }
        Assert.True(r.Next());
        Assert.Equal(RouteAttribute.Metrics, r.TypeAs<RouteAttribute>());
        Assert.True(r.IsNested);
        var inner = r.GetNested();
        Assert.True(inner.Next());
        Assert.Equal(IPAddress.Parse("fd00::1"), inner.GetAddress());
        Assert.False(r.Next());
    }

    [Fact]
    public void Reader_masks_flag_bits_and_stops_strings_at_the_nul()
    {
        byte[] bytes = Convert.FromHexString(
            "0C001280" + "00000000" + "00000000" +   // type 18 | NLA_F_NESTED
            "06000140" + "0050" + "0000" +           // type 1 | NLA_F_NET_BYTEORDER, be16 80
            "0C000300" + "6574683000414243" +        // "eth0\0ABC": the string ends at the NUL
            "05000400" + "07");                      // last attribute without its padding
        var r = new AttributeReader(bytes);
        Assert.True(r.Next());
        Assert.Equal(18, r.Type);
        Assert.True(r.IsNested);
        Assert.True(r.Next());
        Assert.Equal(1, r.Type);
        Assert.True(r.IsNetByteOrder);
        Assert.Equal(80, r.GetUInt16BigEndian());
        Assert.True(r.Next());
        Assert.Equal("eth0", r.GetString());
        Assert.True(r.Next());
        Assert.Equal(7, r.GetByte());
        Assert.False(r.Next());
    }

    public static TheoryData<string, string> Malformed => new()
    {
        { "short header", "0400" },
        { "length below 4", "03000100" },
        { "length 0", "00000100" },
        { "length past the end", "08000100" + "0102" },
        { "second attribute past the end", "05000100" + "07000000" + "FF000200" },
        { "trailing bytes", "05000100" + "07000000" + "0102" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_attributes_throw_only_decode_exceptions(string why, string hex)
    {
        var e = Assert.Throws<NetlinkDecodeException>(() =>
        {
            var r = new AttributeReader(Convert.FromHexString(hex));
            while (r.Next()) { }
        });
        Assert.False(string.IsNullOrEmpty(e.Message), why);
    }

    public static TheoryData<string, string, string> WrongValues => new()
    {
        { "u32 of 2 bytes", "06000100" + "01000000", "u32" },
        { "u32 of 8 bytes", "0C000100" + "0100000000000000", "u32" },
        { "u16 of 4 bytes", "08000100" + "01000000", "u16" },
        { "u8 of 2 bytes", "06000100" + "01000000", "u8" },
        { "string without NUL", "08000300" + "65746830", "string" },
        { "empty string value", "04000300", "string" },
        { "address of 5 bytes", "09000100" + "0A00000100000000", "address" },
        { "invalid UTF-8", "07000300" + "FFFE0000", "string" },
    };

    [Theory]
    [MemberData(nameof(WrongValues))]
    public void Getters_insist_on_the_exact_width(string why, string hex, string getter)
    {
        Assert.Throws<NetlinkDecodeException>(() =>
        {
            var r = new AttributeReader(Convert.FromHexString(hex));
            Assert.True(r.Next(), why);
            _ = getter switch
            {
                "u32" => (object)r.GetUInt32(),
                "u16" => r.GetUInt16(),
                "u8" => r.GetByte(),
                "string" => r.GetString(),
                "address" => r.GetAddress(),
                _ => throw new ArgumentException(getter),
            };
        });
    }

    [Theory]
    [InlineData("")]
    [InlineData("0F000000")]                            // shorter than nlmsghdr
    [InlineData("0F0000000300000000000000000000000000")] // nlmsg_len 15 < 16
    [InlineData("40000000030000000000000000000000")]     // nlmsg_len past the end
    public void Malformed_messages_throw_only_decode_exceptions(string hex)
    {
        var bytes = Convert.FromHexString(hex);
        if (bytes.Length == 0)
        {
            Assert.False(new MessageReader(bytes).Next());
            return;
        }
        Assert.Throws<NetlinkDecodeException>(() => { var r = new MessageReader(bytes); while (r.Next()) { } });
    }

    [Fact]
    public void Headers_refuse_short_input()
    {
        Assert.Throws<NetlinkDecodeException>(() => LinkHeader.Read(new byte[15]));
        Assert.Throws<NetlinkDecodeException>(() => RouteHeader.Read(new byte[11]));
        Assert.Throws<NetlinkDecodeException>(() => AddressHeader.Read(new byte[7]));
        Assert.Throws<NetlinkDecodeException>(() => NeighbourHeader.Read(new byte[3]));
        Assert.Throws<NetlinkDecodeException>(() => NextHopHeader.Read(new byte[7]));
        var link = new LinkHeader(2, 1, 7, InterfaceFlags.Up | InterfaceFlags.NoArp, InterfaceFlags.Up);
        var bytes = new byte[LinkHeader.Size];
        link.Write(bytes);
        Assert.Equal(link, LinkHeader.Read(bytes));
    }
}
