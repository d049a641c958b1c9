using System.Globalization;
using System.Net;
using System.Net.Sockets;
using IpvlanCni.Ipam;

namespace IpvlanCni.ClusterIpam;

/// <summary>
/// Where everything lives in etcd, derived in this one place (P = keyPrefix, N = network name):
/// <code>
/// P/N/ip/4/0a000005               {"ip","attachment","node","pod"}   one key per allocated address: its only owner
/// P/N/att/&lt;node&gt;/&lt;cid&gt;/&lt;ifname&gt;   {"state":"live","ips":[...]} | {"state":"deleted"}   idempotency key / tombstone
/// P/N/block/10.0.0.16_28          {"node"}                          a node's claim: where it allocates first
/// P/N/aff/&lt;node&gt;/10.0.0.16_28     ""                                the node's own blocks, written with the claim
/// </code>
/// Address keys are fixed-width hex, so a block is one key range in byte order, and the key of an address does not
/// depend on the block size: changing blockSize moves no owner.
/// </summary>
public sealed class KeyLayout(string keyPrefix, string network)
{
    public string Root { get; } = $"{keyPrefix}/{network}/";

    public string IpPrefix => Root + "ip/";
    public string IpKey(IPAddress address) => IpPrefix + Hex(address);

    public string AttachmentPrefix(string node) => $"{Root}att/{node}/";
    public string AttachmentKey(string node, string containerId, string ifName) => $"{Root}att/{node}/{containerId}/{ifName}";
    public string AllAttachments => Root + "att/";

    public string BlockPrefix => Root + "block/";
    public string BlockKey(Block block) => BlockPrefix + block.Id;
    public string AffinityPrefix(string node) => $"{Root}aff/{node}/";
    public string AffinityKey(string node, Block block) => AffinityPrefix(node) + block.Id;
    public string AllAffinities => Root + "aff/";

    /// <summary>The keys of a block's addresses, [first, last+1).</summary>
    public Read BlockAddresses(Block block) => Read.Between(IpPrefix + Hex(block.Family, block.Base), EndOf(block));

    string EndOf(Block block)
    {
        UInt128 end = block.Base + (UInt128)block.Size;
        int bits = IpMath.Bits(block.Family);
        // The last block of the family ends past the largest address: the end of the family's key space.
        if (bits == 32 ? end > uint.MaxValue : end == UInt128.Zero)
            return IpPrefix + (block.Family == AddressFamily.InterNetwork ? "4/" : "6/") + "~";
        return IpPrefix + Hex(block.Family, end);
    }

    public static string Hex(IPAddress address)
    {
        address = IpMath.Canonical(address);
        return Hex(address.AddressFamily, IpMath.ToNumber(address));
    }

    public static string Hex(AddressFamily family, UInt128 n) => family == AddressFamily.InterNetwork
        ? "4/" + ((uint)n).ToString("x8", CultureInfo.InvariantCulture)
        : "6/" + ((ulong)(n >> 64)).ToString("x16", CultureInfo.InvariantCulture) + ((ulong)n).ToString("x16", CultureInfo.InvariantCulture);

    /// <summary>The address an address key names, or null for a key that is not one.</summary>
    public IPAddress? AddressOf(string key)
    {
        if (!key.StartsWith(IpPrefix, StringComparison.Ordinal))
            return null;
        var rest = key.AsSpan(IpPrefix.Length);
        if (rest.Length == 10 && rest.StartsWith("4/") && uint.TryParse(rest[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var v4))
            return IpMath.FromNumber(v4, AddressFamily.InterNetwork);
        if (rest.Length == 34 && rest.StartsWith("6/") &&
            ulong.TryParse(rest[2..18], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hi) &&
            ulong.TryParse(rest[18..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var lo))
            return IpMath.FromNumber(((UInt128)hi << 64) | lo, AddressFamily.InterNetworkV6);
        return null;
    }

    /// <summary>The block a block or affinity key names (its last segment), or null.</summary>
    public static Block? BlockOf(string key) => Block.TryParse(key[(key.LastIndexOf('/') + 1)..]);
}

/// <summary>An aligned run of Size addresses starting at Base: "10.0.0.16_28".</summary>
public readonly record struct Block(AddressFamily Family, UInt128 Base, int Size)
{
    public int PrefixLength => IpMath.Bits(Family) - System.Numerics.BitOperations.Log2((uint)Size);
    public string Id => $"{IpMath.Format(IpMath.FromNumber(Base, Family))}_{PrefixLength}";
    public UInt128 Last => Base + (UInt128)(Size - 1);

    public static Block Containing(IPAddress address, int size)
    {
        address = IpMath.Canonical(address);
        var n = IpMath.ToNumber(address);
        return new Block(address.AddressFamily, n & ~(UInt128)(size - 1), size);
    }

    public static Block? TryParse(string id)
    {
        int u = id.LastIndexOf('_');
        if (u <= 0 || !int.TryParse(id.AsSpan(u + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int length) ||
            !IpMath.TryParse(id[..u], out var address))
            return null;
        int bits = IpMath.Bits(address.AddressFamily);
        if (length < bits - 16 || length > bits)
            return null;
        var block = Containing(address, 1 << (bits - length));
        return block.Base == IpMath.ToNumber(address) ? block : null;
    }

    public override string ToString() => Id;
}
