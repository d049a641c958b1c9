using System.Net.NetworkInformation;
using IpvlanCni.Netlink;
using IpvlanCni.Netlink.Route;

namespace IpvlanCni.Network.Codecs;

/// <summary>RTM_*LINK messages to and from <see cref="LinkSpec"/>, <see cref="LinkChange"/> and <see cref="LinkInfo"/>. Pure: bytes only.</summary>
internal static class LinkCodec
{
    // linux/if_link.h: MACVLAN_MODE_BRIDGE.
    const uint MacvlanModeBridge = 4;
    // linux/rtnetlink.h: RTEXT_FILTER_SKIP_STATS keeps get and dump replies small.
    const uint SkipStats = 1 << 3;

    public static NetlinkWriter Create(LinkSpec spec)
    {
        var w = new NetlinkWriter(NetlinkMessageType.NewLink, NetlinkMessageFlags.Create | NetlinkMessageFlags.Excl);
        new LinkHeader(0, 0, 0, 0, 0).Write(w.Reserve(LinkHeader.Size));
        w.PutString(LinkAttribute.Name, spec.Name);
        if (spec.Mtu > 0)
            w.PutUInt32(LinkAttribute.Mtu, (uint)spec.Mtu);
        int parent = spec switch
        {
            VlanLinkSpec v => v.ParentIndex,
            IpvlanLinkSpec i => i.ParentIndex,
            MacvlanLinkSpec m => m.ParentIndex,
            _ => 0,
        };
        // IFLA_LINK is looked up in the requester's namespace, even when the link is created elsewhere.
        if (parent != 0)
            w.PutUInt32(LinkAttribute.Link, (uint)parent);
        if (spec.Namespace is { } ns)
            w.PutUInt32(LinkAttribute.NetNamespaceFd, (uint)ns.FileDescriptorNumber);

        int linkInfo = w.BeginNested(LinkAttribute.LinkInfo);
        w.PutString(LinkInfoAttribute.Kind, KindOf(spec));
        int data = w.BeginNested(LinkInfoAttribute.Data);
        switch (spec)
        {
            case IpvlanLinkSpec ipvlan:
                w.PutUInt16(IpvlanAttribute.Mode, (ushort)ipvlan.Mode);
                w.PutUInt16(IpvlanAttribute.Flags, (ushort)ipvlan.Flag);
                break;
            case VlanLinkSpec vlan:
                w.PutUInt16(VlanAttribute.Id, vlan.VlanId);
                break;
            case MacvlanLinkSpec:
                w.PutUInt32(MacvlanAttribute.Mode, MacvlanModeBridge);
                break;
            case VethLinkSpec veth:
                // VETH_INFO_PEER carries a whole ifinfomsg plus IFLA_* attributes for the other end.
                int peer = w.BeginNested(VethAttribute.Peer);
                new LinkHeader(0, 0, 0, 0, 0).Write(w.Reserve(LinkHeader.Size));
                w.PutString(LinkAttribute.Name, veth.PeerName);
                if (veth.Mtu > 0)
                    w.PutUInt32(LinkAttribute.Mtu, (uint)veth.Mtu);
                if (veth.PeerNamespace is { } peerNs)
                    w.PutUInt32(LinkAttribute.NetNamespaceFd, (uint)peerNs.FileDescriptorNumber);
                w.EndNested(peer);
                break;
        }
        w.EndNested(data);
        w.EndNested(linkInfo);
        return w;
    }

    public static NetlinkWriter Change(int index, LinkChange change)
    {
        var w = new NetlinkWriter(NetlinkMessageType.NewLink, NetlinkMessageFlags.None);
        InterfaceFlags flags = 0, mask = 0;
        if (change.Up is { } up)
        {
            mask |= InterfaceFlags.Up;
            flags |= up ? InterfaceFlags.Up : 0;
        }
        if (change.NoArp is { } noArp)
        {
            mask |= InterfaceFlags.NoArp;
            flags |= noArp ? InterfaceFlags.NoArp : 0;
        }
        // ifi_change selects which ifi_flags bits to apply; do_setlink moves namespace first, renames, then flags.
        new LinkHeader(0, 0, index, flags, mask).Write(w.Reserve(LinkHeader.Size));
        if (change.Name is { } name)
            w.PutString(LinkAttribute.Name, name);
        if (change.Mtu is { } mtu)
            w.PutUInt32(LinkAttribute.Mtu, (uint)mtu);
        if (change.Alias is { } alias)
            w.PutString(LinkAttribute.Alias, alias);
        if (change.MasterIndex is { } master)
            w.PutUInt32(LinkAttribute.Master, (uint)master);
        if (change.Namespace is { } ns)
            w.PutUInt32(LinkAttribute.NetNamespaceFd, (uint)ns.FileDescriptorNumber);
        if (change.ArpNotify is { } arpNotify)
        {
            // IFLA_AF_SPEC { AF_INET { IFLA_INET_CONF { IPV4_DEVCONF_ARP_NOTIFY: u32 } } }: the sysctl, without
            // entering the link's namespace. do_setlink applies it after the rename.
            int spec = w.BeginNested(LinkAttribute.AddressFamilySpec);
            int inet = w.BeginNested(AddressFamilySpecAttribute.Inet);
            int conf = w.BeginNested(InetSpecAttribute.Config);
            w.PutUInt32(Ipv4DeviceConfig.ArpNotify, arpNotify ? 1u : 0u);
            w.EndNested(conf);
            w.EndNested(inet);
            w.EndNested(spec);
        }
        return w;
    }

    /// <summary>RTM_DELLINK by index, or by IFLA_IFNAME (index 0): the kernel looks the name up itself.</summary>
    public static NetlinkWriter Delete(int index, string? name = null)
    {
        var w = new NetlinkWriter(NetlinkMessageType.DeleteLink, NetlinkMessageFlags.None);
        new LinkHeader(0, 0, index, 0, 0).Write(w.Reserve(LinkHeader.Size));
        if (name is not null)
            w.PutString(LinkAttribute.Name, name);
        return w;
    }

    /// <summary>RTM_GETLINK for one link: by index, or by IFLA_IFNAME (index 0); not a dump.</summary>
    public static NetlinkWriter Get(int index, string? name)
    {
        var w = new NetlinkWriter(NetlinkMessageType.GetLink, NetlinkMessageFlags.None);
        new LinkHeader(0, 0, index, 0, 0).Write(w.Reserve(LinkHeader.Size));
        if (name is not null)
            w.PutString(LinkAttribute.Name, name);
        w.PutUInt32(LinkAttribute.ExtendedMask, SkipStats);
        return w;
    }

    public static NetlinkWriter Dump()
    {
        var w = new NetlinkWriter(NetlinkMessageType.GetLink, NetlinkMessageFlags.Dump);
        new LinkHeader(0, 0, 0, 0, 0).Write(w.Reserve(LinkHeader.Size));
        w.PutUInt32(LinkAttribute.ExtendedMask, SkipStats);
        return w;
    }

    /// <summary>An RTM_NEWLINK payload (ifinfomsg + IFLA_*).</summary>
    public static LinkInfo Decode(ReadOnlySpan<byte> payload)
    {
        var header = LinkHeader.Read(payload);
        string? name = null, kind = null, alias = null;
        int parent = 0, mtu = 0;
        int? linkNetnsId = null;
        var mac = PhysicalAddress.None;
        var operState = OperationalState.Unknown;
        ReadOnlySpan<byte> data = default;
        var r = new AttributeReader(payload[LinkHeader.Size..]);
        while (r.Next())
        {
            switch (r.TypeAs<LinkAttribute>())
            {
                case LinkAttribute.Name: name = r.GetString(); break;
                case LinkAttribute.Alias: alias = r.GetString(); break;
                case LinkAttribute.Mtu: mtu = (int)r.GetUInt32(); break;
                case LinkAttribute.Link: parent = r.GetInt32(); break;
                case LinkAttribute.LinkNetNamespaceId: linkNetnsId = r.GetInt32(); break;
                case LinkAttribute.Address: mac = new PhysicalAddress(r.GetBytes()); break;
                case LinkAttribute.OperationalState: operState = (OperationalState)r.GetByte(); break;
                case LinkAttribute.LinkInfo:
                    var info = r.GetNested();
                    while (info.Next())
                    {
                        switch (info.TypeAs<LinkInfoAttribute>())
                        {
                            case LinkInfoAttribute.Kind: kind = info.GetString(); break;
                            case LinkInfoAttribute.Data: data = info.Value; break;
                        }
                    }
                    break;
            }
        }
        if (name is null)
            throw new NetlinkDecodeException($"link {header.Index}: no IFLA_IFNAME");

        IpvlanMode? ipvlanMode = null;
        IpvlanFlag? ipvlanFlag = null;
        ushort? vlanId = null;
        var d = new AttributeReader(data);
        while (d.Next())
        {
            switch (kind)
            {
                case "ipvlan" when d.TypeAs<IpvlanAttribute>() == IpvlanAttribute.Mode: ipvlanMode = (IpvlanMode)d.GetUInt16(); break;
                case "ipvlan" when d.TypeAs<IpvlanAttribute>() == IpvlanAttribute.Flags: ipvlanFlag = (IpvlanFlag)d.GetUInt16(); break;
                case "vlan" when d.TypeAs<VlanAttribute>() == VlanAttribute.Id: vlanId = d.GetUInt16(); break;
            }
        }
        return new LinkInfo
        {
            Index = header.Index,
            Name = name,
            Kind = kind,
            ParentIndex = parent,
            ParentNamespaceId = linkNetnsId,
            MacAddress = mac,
            Mtu = mtu,
            IsUp = (header.Flags & InterfaceFlags.Up) != 0,
            NoArp = (header.Flags & InterfaceFlags.NoArp) != 0,
            OperationalState = operState,
            IpvlanMode = ipvlanMode,
            IpvlanFlag = ipvlanFlag,
            VlanId = vlanId,
            Alias = alias,
        };
    }

    /// <summary>IFLA_INFO_KIND of a link to create.</summary>
    public static string KindOf(LinkSpec spec) => spec switch
    {
        DummyLinkSpec => "dummy",
        VethLinkSpec => "veth",
        VlanLinkSpec => "vlan",
        IpvlanLinkSpec => "ipvlan",
        MacvlanLinkSpec => "macvlan",
        BridgeLinkSpec => "bridge",
        _ => throw new ArgumentException($"unsupported link kind {spec.GetType().Name}", nameof(spec)),
    };
}
