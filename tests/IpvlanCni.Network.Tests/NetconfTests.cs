using System.Net.Sockets;
using IpvlanCni.Netlink;
using IpvlanCni.Network.Codecs;

namespace IpvlanCni.Network.Tests;

/// <summary>RTM_GETNETCONF for a namespace's "all" forwarding switch (what net.ipv4.ip_forward shows).</summary>
public sealed class NetconfTests
{
    // RTM_NEWNETCONF payload as inet_netconf_fill_devconf writes it for NETCONFA_IFINDEX_ALL: netconfmsg (AF_INET,
    // padded to 4), NETCONFA_IFINDEX -1, NETCONFA_FORWARDING, NETCONFA_RP_FILTER, NETCONFA_MC_FORWARDING.
    static byte[] Reply(int forwarding) => Convert.FromHexString(
        "02000000" + "08000100FFFFFFFF" + "08000200" + Convert.ToHexString(BitConverter.GetBytes(forwarding)) + "0800030002000000" + "0800040000000000");

    [Fact]
    public void The_request_names_every_interface_and_nothing_else()
    {
        var w = NetconfCodec.GetAll(AddressFamily.InterNetworkV6);
        try
        {
            Assert.Equal("1C0000005200000000000000000000000A00000008000100FFFFFFFF", Convert.ToHexString(w.Message));
        }
        finally
        {
            w.Dispose();
        }
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, true)]
    [InlineData(2, true)] // IPv6 "forward and accept router advertisements" still forwards
    public void Forwarding_is_any_value_but_zero(int value, bool expected)
    {
        var kernel = new ScriptedTransport().ReplyGet(NetlinkMessageType.NewNetconf, Reply(value));
        using var client = new RouteClient(kernel);
        Assert.Equal(expected, client.IsForwarding(AddressFamily.InterNetwork));
        var request = Assert.Single(kernel.Requests);
        Assert.Equal(NetlinkMessageType.GetNetconf, request.Type);
        Assert.Equal(NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack, request.Flags);
    }

    [Fact]
    public void A_kernel_without_the_family_does_not_forward_it()
    {
        using var client = new RouteClient(new ScriptedTransport().ReplyError(95 /* EOPNOTSUPP */));
        Assert.False(client.IsForwarding(AddressFamily.InterNetworkV6));
    }

    [Fact]
    public void Any_other_error_is_an_error()
    {
        using var client = new RouteClient(new ScriptedTransport().ReplyError(1 /* EPERM */));
        Assert.Equal(1, Assert.Throws<NetlinkException>(() => client.IsForwarding(AddressFamily.InterNetwork)).Errno);
    }

    [Fact]
    public void Truncated_replies_throw_only_decode_exceptions()
    {
        var payload = Reply(1);
        for (int length = 0; length < payload.Length; length++)
        {
            try
            {
                NetconfCodec.DecodeForwarding(payload.AsSpan(0, length));
            }
            catch (NetlinkDecodeException)
            {
            }
        }
        Assert.Null(NetconfCodec.DecodeForwarding(payload.AsSpan(0, 12)));
    }
}
