using System.Net.NetworkInformation;
using System.Net.Sockets;
using IpvlanCni.Netlink;
using IpvlanCni.Netlink.Route;

namespace IpvlanCni.Network.Codecs;

/// <summary>RTM_*NEIGH messages to and from <see cref="NeighbourInfo"/>.</summary>
internal static class NeighbourCodec
{
    /// <summary>NLM_F_CREATE|NLM_F_REPLACE: "ip neigh replace", idempotent.</summary>
    public static NetlinkWriter Add(NeighbourInfo neighbour)
    {
        var w = new NetlinkWriter(NetlinkMessageType.NewNeighbour, NetlinkMessageFlags.Create | NetlinkMessageFlags.Replace);
        new NeighbourHeader(Family.ToKernel(neighbour.Address.AddressFamily), neighbour.LinkIndex, (ushort)neighbour.State, 0, 0)
            .Write(w.Reserve(NeighbourHeader.Size));
        w.PutAddress(NeighbourAttribute.Destination, neighbour.Address);
        w.Put(NeighbourAttribute.LinkLayerAddress, neighbour.MacAddress.GetAddressBytes());
        return w;
    }

    public static NetlinkWriter Delete(NeighbourInfo neighbour)
    {
        var w = new NetlinkWriter(NetlinkMessageType.DeleteNeighbour, NetlinkMessageFlags.None);
        new NeighbourHeader(Family.ToKernel(neighbour.Address.AddressFamily), neighbour.LinkIndex, 0, 0, 0).Write(w.Reserve(NeighbourHeader.Size));
        w.PutAddress(NeighbourAttribute.Destination, neighbour.Address);
        return w;
    }

    /// <summary>Strict dumps reject ndm_ifindex in the header; the link filter is NDA_IFINDEX.</summary>
    public static NetlinkWriter Dump(AddressFamily family, int linkIndex)
    {
        var w = new NetlinkWriter(NetlinkMessageType.GetNeighbour, NetlinkMessageFlags.Dump);
        new NeighbourHeader(Family.ToKernel(family), 0, 0, 0, 0).Write(w.Reserve(NeighbourHeader.Size));
        if (linkIndex != 0)
            w.PutUInt32(NeighbourAttribute.InterfaceIndex, (uint)linkIndex);
        return w;
    }

    /// <summary>An RTM_NEWNEIGH payload; null for a family other than IPv4/IPv6 or an entry without NDA_DST.</summary>
    public static NeighbourInfo? Decode(ReadOnlySpan<byte> payload)
    {
        var header = NeighbourHeader.Read(payload);
        var family = Family.FromKernel(header.Family);
        if (family is null)
            return null;
        System.Net.IPAddress? address = null;
        var mac = PhysicalAddress.None;
        var r = new AttributeReader(payload[NeighbourHeader.Size..]);
        while (r.Next())
        {
            switch (r.TypeAs<NeighbourAttribute>())
            {
                case NeighbourAttribute.Destination: address = r.GetAddress(); break;
                case NeighbourAttribute.LinkLayerAddress: mac = new PhysicalAddress(r.GetBytes()); break;
            }
        }
        if (address is null)
            return null;
        if (address.AddressFamily != family)
            throw new NetlinkDecodeException($"neighbour {address} in family {header.Family}");
        return new NeighbourInfo(header.Index, address, mac) { State = (NeighbourState)header.State };
    }
}
