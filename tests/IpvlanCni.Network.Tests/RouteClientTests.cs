using System.Net.Sockets;
using IpvlanCni.Netlink;
using IpvlanCni.Netlink.Route;

namespace IpvlanCni.Network.Tests;

/// <summary>The services choose message types and flags; the fake kernel checks them.</summary>
public sealed class RouteClientTests
{
    static byte[] KernelLinkPayload()
    {
        var r = new MessageReader(Convert.FromHexString(CodecTests.KernelIpvlanLink));
        Assert.True(r.Next());
        return r.Payload.ToArray();
    }

    [Fact]
    public void Get_by_name_is_one_request_not_a_dump()
    {
        var kernel = new ScriptedTransport().ReplyGet(NetlinkMessageType.NewLink, KernelLinkPayload());
        using var client = new RouteClient(kernel);
        var link = client.GetLink("ipv0");
        Assert.Equal(3, link.Index);

        var request = Assert.Single(kernel.Requests);
        Assert.Equal(NetlinkMessageType.GetLink, request.Type);
        Assert.Equal(NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack, request.Flags);
        var attributes = new AttributeReader(request.Payload.AsSpan(LinkHeader.Size));
        string? name = null;
        while (attributes.Next())
            if (attributes.TypeAs<LinkAttribute>() == LinkAttribute.Name)
                name = attributes.GetString();
        Assert.Equal("ipv0", name);
        Assert.Equal(1, client.RequestCount);
    }

    [Fact]
    public void TryGetLink_turns_ENODEV_into_null_and_other_errors_into_exceptions()
    {
        var kernel = new ScriptedTransport().ReplyError(19).ReplyError(1, "Operation not permitted");
        using var client = new RouteClient(kernel);
        Assert.Null(client.TryGetLink("nope0"));
        var e = Assert.Throws<NetlinkException>(() => client.TryGetLink(5));
        Assert.Equal(1, e.Errno);
    }

    [Fact]
    public void Create_change_delete_use_the_right_types_and_flags()
    {
        var kernel = new ScriptedTransport().ReplyAck().ReplyAck().ReplyAck().ReplyAck();
        using var client = new RouteClient(kernel);
        client.CreateLink(new DummyLinkSpec("d0"));
        client.ChangeLink(3, new LinkChange { Up = true });
        client.DeleteLink(3);
        client.ReplaceRoute(new RouteInfo(IpPrefix.Parse("10.0.0.0/8")) { LinkIndex = 3 });
        Assert.Equal(
            [
                (NetlinkMessageType.NewLink, NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack | NetlinkMessageFlags.Create | NetlinkMessageFlags.Excl),
                (NetlinkMessageType.NewLink, NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack),
                (NetlinkMessageType.DeleteLink, NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack),
                (NetlinkMessageType.NewRoute, NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack | NetlinkMessageFlags.Create | NetlinkMessageFlags.Replace),
            ],
            kernel.Requests.Select(r => (r.Type, r.Flags)));
    }

    [Fact]
    public void Address_dumps_filter_by_family_and_link()
    {
        var v4 = new AddressInfo(3, IpPrefix.Parse("10.1.2.3/24"));
        var v6 = new AddressInfo(3, IpPrefix.Parse("fd00::3/64"));
        var other = new AddressInfo(4, IpPrefix.Parse("10.9.9.9/24"));
        byte[] Payload(AddressInfo a)
        {
            using var w = Codecs.AddressCodec.Add(a);
            return w.Message[NetlinkAlign.MessageHeaderLength..].ToArray();
        }
        var kernel = new ScriptedTransport().ReplyDump(NetlinkMessageType.NewAddress, Payload(v4), Payload(v6), Payload(other));
        using var client = new RouteClient(kernel);
        Assert.Equal([v4], client.ListAddresses(AddressFamily.InterNetwork, 3));
        var header = AddressHeader.Read(kernel.Requests[0].Payload);
        Assert.Equal((byte)2, header.Family);
        Assert.Equal(3, header.Index);
    }
}
