using IpvlanCni.Netlink;
using IpvlanCni.Netlink.Route;

namespace IpvlanCni.Network.Tests;

/// <summary>The requests that save round trips and threads say exactly what the kernel needs.</summary>
public sealed class RoundTripReductionTests
{
    [Fact]
    public void TryDeleteLink_deletes_by_name_in_one_request_and_reports_absence_without_throwing()
    {
        var kernel = new ScriptedTransport().ReplyAck().ReplyError(19).ReplyError(1, "Operation not permitted");
        using var client = new RouteClient(kernel);

        Assert.True(client.TryDeleteLink("eth0"));
        Assert.False(client.TryDeleteLink("ipvl0123456789"));
        Assert.Equal(1, Assert.Throws<NetlinkException>(() => client.TryDeleteLink("eth1")).Errno);

        var request = kernel.Requests[0];
        Assert.Equal(NetlinkMessageType.DeleteLink, request.Type);
        Assert.Equal(0, LinkHeader.Read(request.Payload).Index); // the kernel looks the name up
        var attributes = new AttributeReader(request.Payload.AsSpan(LinkHeader.Size));
        Assert.True(attributes.Next());
        Assert.Equal(LinkAttribute.Name, attributes.TypeAs<LinkAttribute>());
        Assert.Equal("eth0", attributes.GetString());
        Assert.False(attributes.Next());
        Assert.Equal(3, client.RequestCount);
    }

    [Fact]
    public void ArpNotify_rides_on_the_rename_as_IFLA_AF_SPEC_inet_conf()
    {
        using var request = Codecs.LinkCodec.Change(7, new LinkChange { Name = "eth0", ArpNotify = true });
        var payload = request.Message[NetlinkAlign.MessageHeaderLength..].ToArray();
        Assert.Equal(7, LinkHeader.Read(payload).Index);
        string? name = null;
        uint? arpNotify = null;
        var attributes = new AttributeReader(payload.AsSpan(LinkHeader.Size));
        while (attributes.Next())
        {
            switch (attributes.TypeAs<LinkAttribute>())
            {
                case LinkAttribute.Name:
                    name = attributes.GetString();
                    break;
                case LinkAttribute.AddressFamilySpec:
                    var families = attributes.GetNested();
                    Assert.True(families.Next());
                    Assert.Equal(AddressFamilySpecAttribute.Inet, families.TypeAs<AddressFamilySpecAttribute>());
                    var inet = families.GetNested();
                    Assert.True(inet.Next());
                    Assert.Equal(InetSpecAttribute.Config, inet.TypeAs<InetSpecAttribute>());
                    var config = inet.GetNested();
                    Assert.True(config.Next());
                    Assert.Equal(22, config.Type); // IPV4_DEVCONF_ARP_NOTIFY
                    arpNotify = config.GetUInt32();
                    break;
            }
        }
        Assert.Equal("eth0", name);
        Assert.Equal(1u, arpNotify);
    }
}
