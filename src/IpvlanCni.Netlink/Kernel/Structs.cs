using System.Runtime.InteropServices;

#pragma warning disable CS8981 // lower-case names on purpose: they are the kernel's

// The kernel's netlink structs under their C names, so they can be grepped against the headers. They stay inside
// this layer: everything above sees the .NET-named headers in Headers.cs.
namespace IpvlanCni.Netlink.Kernel;

/// <summary>linux/netlink.h</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct nlmsghdr
{
    public uint nlmsg_len;
    public ushort nlmsg_type;
    public ushort nlmsg_flags;
    public uint nlmsg_seq;
    public uint nlmsg_pid;
}

/// <summary>linux/netlink.h: the payload of NLMSG_ERROR (error 0 = ACK), followed by the request or its header.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct nlmsgerr
{
    public int error;
    public nlmsghdr msg;
}

/// <summary>linux/netlink.h</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct nlattr
{
    public ushort nla_len;
    public ushort nla_type;
}

/// <summary>linux/rtnetlink.h</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct ifinfomsg
{
    public byte ifi_family;
    public byte __ifi_pad;
    public ushort ifi_type;
    public int ifi_index;
    public uint ifi_flags;
    public uint ifi_change;
}

/// <summary>linux/if_addr.h</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct ifaddrmsg
{
    public byte ifa_family;
    public byte ifa_prefixlen;
    public byte ifa_flags;
    public byte ifa_scope;
    public uint ifa_index;
}

/// <summary>linux/rtnetlink.h</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct rtmsg
{
    public byte rtm_family;
    public byte rtm_dst_len;
    public byte rtm_src_len;
    public byte rtm_tos;
    public byte rtm_table;
    public byte rtm_protocol;
    public byte rtm_scope;
    public byte rtm_type;
    public uint rtm_flags;
}

/// <summary>linux/neighbour.h</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct ndmsg
{
    public byte ndm_family;
    public byte ndm_pad1;
    public ushort ndm_pad2;
    public int ndm_ifindex;
    public ushort ndm_state;
    public byte ndm_flags;
    public byte ndm_type;
}

/// <summary>linux/netconf.h (padded to 4 in a message, NLMSG_ALIGN)</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct netconfmsg
{
    public byte ncm_family;
}

/// <summary>linux/rtnetlink.h: one path inside RTA_MULTIPATH, followed by its own attributes (RTA_GATEWAY).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct rtnexthop
{
    public ushort rtnh_len;
    public byte rtnh_flags;
    public byte rtnh_hops;
    public int rtnh_ifindex;
}
