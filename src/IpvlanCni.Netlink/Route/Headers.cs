using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using IpvlanCni.Netlink.Kernel;

namespace IpvlanCni.Netlink.Route;

// The fixed headers that follow nlmsghdr in rtnetlink messages, under .NET names. Each converts to and from its
// kernel struct (Kernel/Structs.cs) here, so nothing above this layer sees a C name.

/// <summary>ifinfomsg.</summary>
public readonly record struct LinkHeader(byte Family, ushort DeviceType, int Index, InterfaceFlags Flags, InterfaceFlags Change)
{
    public static int Size => Unsafe.SizeOf<ifinfomsg>();

    public void Write(Span<byte> destination)
    {
        var raw = new ifinfomsg { ifi_family = Family, ifi_type = DeviceType, ifi_index = Index, ifi_flags = (uint)Flags, ifi_change = (uint)Change };
        MemoryMarshal.Write(destination, in raw);
    }

    public static LinkHeader Read(ReadOnlySpan<byte> source)
    {
        var raw = HeaderRead.Struct<ifinfomsg>(source, "ifinfomsg");
        return new(raw.ifi_family, raw.ifi_type, raw.ifi_index, (InterfaceFlags)raw.ifi_flags, (InterfaceFlags)raw.ifi_change);
    }
}

/// <summary>ifaddrmsg.</summary>
public readonly record struct AddressHeader(byte Family, byte PrefixLength, byte Flags, byte Scope, int Index)
{
    public static int Size => Unsafe.SizeOf<ifaddrmsg>();

    public void Write(Span<byte> destination)
    {
        var raw = new ifaddrmsg { ifa_family = Family, ifa_prefixlen = PrefixLength, ifa_flags = Flags, ifa_scope = Scope, ifa_index = (uint)Index };
        MemoryMarshal.Write(destination, in raw);
    }

    public static AddressHeader Read(ReadOnlySpan<byte> source)
    {
        var raw = HeaderRead.Struct<ifaddrmsg>(source, "ifaddrmsg");
        return new(raw.ifa_family, raw.ifa_prefixlen, raw.ifa_flags, raw.ifa_scope, (int)raw.ifa_index);
    }
}

/// <summary>rtmsg.</summary>
public readonly record struct RouteHeader(byte Family, byte DestinationLength, byte SourceLength, byte Tos, byte Table,
    byte Protocol, byte Scope, byte Type, uint Flags)
{
    public static int Size => Unsafe.SizeOf<rtmsg>();

    public void Write(Span<byte> destination)
    {
        var raw = new rtmsg
        {
            rtm_family = Family, rtm_dst_len = DestinationLength, rtm_src_len = SourceLength, rtm_tos = Tos, rtm_table = Table,
            rtm_protocol = Protocol, rtm_scope = Scope, rtm_type = Type, rtm_flags = Flags,
        };
        MemoryMarshal.Write(destination, in raw);
    }

    public static RouteHeader Read(ReadOnlySpan<byte> source)
    {
        var r = HeaderRead.Struct<rtmsg>(source, "rtmsg");
        return new(r.rtm_family, r.rtm_dst_len, r.rtm_src_len, r.rtm_tos, r.rtm_table, r.rtm_protocol, r.rtm_scope, r.rtm_type, r.rtm_flags);
    }
}

/// <summary>ndmsg.</summary>
public readonly record struct NeighbourHeader(byte Family, int Index, ushort State, byte Flags, byte Type)
{
    public static int Size => Unsafe.SizeOf<ndmsg>();

    public void Write(Span<byte> destination)
    {
        var raw = new ndmsg { ndm_family = Family, ndm_ifindex = Index, ndm_state = State, ndm_flags = Flags, ndm_type = Type };
        MemoryMarshal.Write(destination, in raw);
    }

    public static NeighbourHeader Read(ReadOnlySpan<byte> source)
    {
        var raw = HeaderRead.Struct<ndmsg>(source, "ndmsg");
        return new(raw.ndm_family, raw.ndm_ifindex, raw.ndm_state, raw.ndm_flags, raw.ndm_type);
    }
}

/// <summary>netconfmsg: the address family whose devconf a RTM_*NETCONF message is about.</summary>
public readonly record struct NetconfHeader(byte Family)
{
    public static int Size => Unsafe.SizeOf<netconfmsg>();

    public void Write(Span<byte> destination) => MemoryMarshal.Write(destination, new netconfmsg { ncm_family = Family });

    public static NetconfHeader Read(ReadOnlySpan<byte> source) => new(HeaderRead.Struct<netconfmsg>(source, "netconfmsg").ncm_family);
}

/// <summary>rtnexthop: one path of RTA_MULTIPATH; Length covers the header and the path's own attributes.</summary>
public readonly record struct NextHopHeader(ushort Length, NextHopFlags Flags, byte Hops, int Index)
{
    public static int Size => Unsafe.SizeOf<rtnexthop>();

    public void Write(Span<byte> destination)
    {
        var raw = new rtnexthop { rtnh_len = Length, rtnh_flags = (byte)Flags, rtnh_hops = Hops, rtnh_ifindex = Index };
        MemoryMarshal.Write(destination, in raw);
    }

    public static NextHopHeader Read(ReadOnlySpan<byte> source)
    {
        var raw = HeaderRead.Struct<rtnexthop>(source, "rtnexthop");
        return new(raw.rtnh_len, (NextHopFlags)raw.rtnh_flags, raw.rtnh_hops, raw.rtnh_ifindex);
    }
}

static class HeaderRead
{
    public static T Struct<T>(ReadOnlySpan<byte> source, string name) where T : unmanaged =>
        source.Length >= Unsafe.SizeOf<T>()
            ? MemoryMarshal.Read<T>(source)
            : throw new NetlinkDecodeException($"{name}: {source.Length} bytes, need {Unsafe.SizeOf<T>()}");
}
