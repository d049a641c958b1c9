using System.Net.Sockets;
using IpvlanCni.Netlink;
using IpvlanCni.Netlink.Route;

namespace IpvlanCni.Network.Codecs;

/// <summary>RTM_GETNETCONF / RTM_NEWNETCONF: a namespace's "all" devconf of one family (what net.ipv4.ip_forward and
/// net.ipv6.conf.all.forwarding show), read over a socket bound to that namespace instead of its /proc/sys.</summary>
internal static class NetconfCodec
{
    // #define NETCONFA_IFINDEX_ALL -1
    const int AllInterfaces = -1;

    /// <summary>net/ipv4/devinet.c inet_netconf_get_devconf, net/ipv6/addrconf.c inet6_netconf_get_devconf: a strict
    /// request carries NETCONFA_IFINDEX only.</summary>
    public static NetlinkWriter GetAll(AddressFamily family)
    {
        var w = new NetlinkWriter(NetlinkMessageType.GetNetconf, NetlinkMessageFlags.None);
        new NetconfHeader(Family.ToKernel(family)).Write(w.Reserve(NetconfHeader.Size));
        w.PutInt32(NetconfAttribute.InterfaceIndex, AllInterfaces);
        return w;
    }

    /// <summary>NETCONFA_FORWARDING of an RTM_NEWNETCONF payload; null when the message does not carry it.</summary>
    public static int? DecodeForwarding(ReadOnlySpan<byte> payload)
    {
        NetconfHeader.Read(payload);
        int start = NetlinkAlign.Attribute(NetconfHeader.Size);
        if (payload.Length < start)
            throw new NetlinkDecodeException($"netconfmsg: {payload.Length} bytes, need {start}");
        int? forwarding = null;
        var r = new AttributeReader(payload[start..]);
        while (r.Next())
            if (r.TypeAs<NetconfAttribute>() == NetconfAttribute.Forwarding)
                forwarding = r.GetInt32();
        return forwarding;
    }
}
