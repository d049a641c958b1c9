using System.Net.Sockets;
using IpvlanCni.Netlink;
using IpvlanCni.Netlink.Route;

namespace IpvlanCni.Network.Codecs;

/// <summary>RTM_*ADDR messages to and from <see cref="AddressInfo"/>.</summary>
internal static class AddressCodec
{
    public static NetlinkWriter Add(AddressInfo address) =>
        Write(NetlinkMessageType.NewAddress, NetlinkMessageFlags.Create | NetlinkMessageFlags.Excl, address);

    public static NetlinkWriter Delete(AddressInfo address) =>
        Write(NetlinkMessageType.DeleteAddress, NetlinkMessageFlags.None, address);

    /// <summary>With NETLINK_GET_STRICT_CHK the kernel filters by family and ifa_index itself.</summary>
    public static NetlinkWriter Dump(AddressFamily family, int linkIndex)
    {
        var w = new NetlinkWriter(NetlinkMessageType.GetAddress, NetlinkMessageFlags.Dump);
        new AddressHeader(Family.ToKernel(family), 0, 0, 0, linkIndex).Write(w.Reserve(AddressHeader.Size));
        return w;
    }

    static NetlinkWriter Write(NetlinkMessageType type, NetlinkMessageFlags flags, AddressInfo address)
    {
        var w = new NetlinkWriter(type, flags);
        var prefix = address.Prefix;
        // ifa_flags holds only the low 8 bits; IFA_FLAGS carries all 32.
        new AddressHeader(Family.ToKernel(prefix.Family), (byte)prefix.PrefixLength, (byte)address.Flags, (byte)address.Scope, address.LinkIndex)
            .Write(w.Reserve(AddressHeader.Size));
        // IFA_LOCAL is the interface's address; IFA_ADDRESS equal to it means "not point-to-point".
        w.PutAddress(AddressAttribute.Local, prefix.Address);
        w.PutAddress(AddressAttribute.Address, prefix.Address);
        if (address.Flags != AddressFlags.None)
            w.PutUInt32(AddressAttribute.Flags, (uint)address.Flags);
        return w;
    }

    /// <summary>An RTM_NEWADDR payload; null for a family other than IPv4/IPv6.</summary>
    public static AddressInfo? Decode(ReadOnlySpan<byte> payload)
    {
        var header = AddressHeader.Read(payload);
        var family = Family.FromKernel(header.Family);
        if (family is null)
            return null;
        System.Net.IPAddress? local = null, address = null;
        var flags = (AddressFlags)header.Flags;
        var r = new AttributeReader(payload[AddressHeader.Size..]);
        while (r.Next())
        {
            switch (r.TypeAs<AddressAttribute>())
            {
                case AddressAttribute.Local: local = r.GetAddress(); break;
                case AddressAttribute.Address: address = r.GetAddress(); break;
                case AddressAttribute.Flags: flags = (AddressFlags)r.GetUInt32(); break;
            }
        }
        var ip = local ?? address ?? throw new NetlinkDecodeException($"address on link {header.Index}: no IFA_LOCAL or IFA_ADDRESS");
        if (ip.AddressFamily != family || header.PrefixLength > (family == AddressFamily.InterNetwork ? 32 : 128))
            throw new NetlinkDecodeException($"address {ip}/{header.PrefixLength} does not match family {header.Family}");
        return new AddressInfo(header.Index, new IpPrefix(ip, header.PrefixLength))
        {
            Scope = (RouteScope)header.Scope,
            Flags = flags,
        };
    }
}

/// <summary>AF_INET = 2, AF_INET6 = 10 on Linux (not .NET's AddressFamily numbers for IPv6).</summary>
internal static class Family
{
    public const byte Unspecified = 0, IPv4 = 2, IPv6 = 10;

    public static byte ToKernel(AddressFamily family) => family switch
    {
        AddressFamily.Unspecified => Unspecified,
        AddressFamily.InterNetwork => IPv4,
        AddressFamily.InterNetworkV6 => IPv6,
        _ => throw new ArgumentException($"unsupported address family {family}", nameof(family)),
    };

    public static AddressFamily? FromKernel(byte family) => family switch
    {
        IPv4 => AddressFamily.InterNetwork,
        IPv6 => AddressFamily.InterNetworkV6,
        _ => null,
    };
}
