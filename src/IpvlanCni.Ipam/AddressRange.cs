using System.Net;
using System.Net.Sockets;
using IpvlanCni.Network;

namespace IpvlanCni.Ipam;

/// <summary>One canonical host-local range: every field filled in and checked, Start..End inclusive.</summary>
public sealed record AddressRange
{
    public required IpPrefix Subnet { get; init; }
    public required IPAddress Start { get; init; }
    public required IPAddress End { get; init; }
    public required IPAddress Gateway { get; init; }
    /// <summary>Where it came from in the config, for error messages ("ipam.ranges[0][1]").</summary>
    public string Path { get; init; } = "";

    public AddressFamily Family => Subnet.Family;

    /// <summary>In the subnet and within [Start, End] (the reference's Range.Contains).</summary>
    public bool Contains(IPAddress address)
    {
        address = IpMath.Canonical(address);
        return address.AddressFamily == Family && Subnet.Contains(address) &&
               IpMath.Compare(address, Start) >= 0 && IpMath.Compare(address, End) <= 0;
    }

    public bool Overlaps(AddressRange other) =>
        Family == other.Family &&
        (Contains(other.Start) || Contains(other.End) || other.Contains(Start) || other.Contains(End));

    public override string ToString() => $"{IpMath.Format(Start)}-{IpMath.Format(End)}";

    /// <summary>
    /// The reference's Range.Canonicalize: defaults Start = network+1, End = broadcast-1 (IPv4) or the last address (IPv6),
    /// Gateway = network+1. Beyond it we reject Start > End and a range that would hand out the network or IPv4 broadcast.
    /// </summary>
    public static AddressRange Create(IpPrefix subnet, IPAddress? start, IPAddress? end, IPAddress? gateway, string path)
    {
        int bits = IpMath.Bits(subnet.Family);
        if (subnet.PrefixLength > bits - 2)
            throw IpamJson.Invalid($"{path}.subnet", $"network {IpMath.Format(subnet)} too small to allocate from");
        var network = subnet.Network.Address;
        if (!network.Equals(subnet.Address))
            throw IpamJson.Invalid($"{path}.subnet",
                $"\"{IpMath.Format(subnet)}\" has host bits set; for a prefix length of {subnet.PrefixLength} the network address is {IpMath.Format(network)}");
        var last = IpMath.LastAddress(subnet);
        var broadcast = subnet.IsIPv4 ? last : null;

        // The reference accepts any gateway, even outside the subnet (routed setups); only the family must match.
        if (gateway is not null && gateway.AddressFamily != subnet.Family)
            throw IpamJson.Invalid($"{path}.gateway", $"{IpMath.Format(gateway)} is not in the address family of {IpMath.Format(subnet)}");
        gateway ??= IpMath.Next(network);

        if (start is not null)
        {
            if (!subnet.Contains(start))
                throw IpamJson.Invalid($"{path}.rangeStart", $"{IpMath.Format(start)} is not in network {IpMath.Format(subnet)}");
            if (start.Equals(network))
                throw IpamJson.Invalid($"{path}.rangeStart", $"{IpMath.Format(start)} is the network address of {IpMath.Format(subnet)}");
        }
        start ??= IpMath.Next(network);

        if (end is not null)
        {
            if (!subnet.Contains(end))
                throw IpamJson.Invalid($"{path}.rangeEnd", $"{IpMath.Format(end)} is not in network {IpMath.Format(subnet)}");
            if (end.Equals(broadcast))
                throw IpamJson.Invalid($"{path}.rangeEnd", $"{IpMath.Format(end)} is the broadcast address of {IpMath.Format(subnet)}");
        }
        end ??= subnet.IsIPv4 ? IpMath.Previous(last) : last;

        if (IpMath.Compare(start, end) > 0)
            throw IpamJson.Invalid($"{path}.rangeEnd", $"{IpMath.Format(end)} is before rangeStart {IpMath.Format(start)}");

        return new AddressRange { Subnet = subnet, Start = start, End = end, Gateway = gateway, Path = path };
    }
}

/// <summary>Ranges handed out as one pool, in order; one address per range set per container interface.</summary>
public sealed record AddressRangeSet(IReadOnlyList<AddressRange> Ranges, string Path)
{
    public AddressRange? RangeFor(IPAddress address) => Ranges.FirstOrDefault(r => r.Contains(address));

    public bool Contains(IPAddress address) => RangeFor(address) is not null;

    public bool Overlaps(AddressRangeSet other) => Ranges.Any(r => other.Ranges.Any(r.Overlaps));

    public override string ToString() => string.Join(",", Ranges);
}
