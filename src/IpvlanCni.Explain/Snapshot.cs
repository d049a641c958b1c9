using System.Text.Json;
using System.Text.Json.Serialization;

namespace IpvlanCni.Explain;

/// <summary>
/// Everything the model reads about a node, as plain data: every network namespace the reader found (the node's
/// own, the pods', any other), its links, addresses, routes, neighbours and forwarding switches, and what the
/// plugin's records say about NAT. Addresses are text ("10.0.0.1/24") so a snapshot is readable JSON that tests
/// record and replay; <see cref="Topology"/> parses it once.
/// </summary>
/// <param name="Node">The <see cref="NamespaceSnapshot.Id"/> of the node's own namespace.</param>
/// <param name="Masquerade">Our ipMasq rules per network, from the plugin's records; null: not known (records unreadable).</param>
public sealed record NodeSnapshot(string Node, List<NamespaceSnapshot> Namespaces, List<MasqueradeSnapshot>? Masquerade)
{
    public string ToJson() => JsonSerializer.Serialize(this, SnapshotJson.Default.NodeSnapshot);

    public static NodeSnapshot FromJson(string json) =>
        JsonSerializer.Deserialize(json, SnapshotJson.Default.NodeSnapshot) ?? throw new JsonException("snapshot: null");
}

/// <param name="Id">The namespace's path as found (/run/netns/x, /proc/123/ns/net), "node" for the node's own.</param>
/// <param name="Inode">Identity with <paramref name="Device"/>: two paths of one namespace are one entry.</param>
public sealed record NamespaceSnapshot(
    string Id, ulong Device, ulong Inode,
    bool ForwardingIPv4, bool ForwardingIPv6,
    List<LinkSnapshot> Links, List<AddressSnapshot> Addresses, List<RouteSnapshot> Routes, List<NeighbourSnapshot> Neighbours);

/// <param name="ParentNamespaceId">IFLA_LINK_NETNSID: the parent (ipvlan master, veth peer) is in another namespace.</param>
/// <param name="Mode">"l2", "l3", "l3s" for an ipvlan link (the port's mode).</param>
/// <param name="Flag">"bridge", "private", "vepa" for an ipvlan link.</param>
public sealed record LinkSnapshot(int Index, string Name, string? Kind, int Parent, int? ParentNamespaceId, string Mac,
    bool Up, bool NoArp, string? Mode = null, string? Flag = null, int? VlanId = null);

public sealed record AddressSnapshot(int Link, string Prefix, bool Tentative = false);

/// <param name="Type">rtm_type: 1 unicast, 2 local, 6 blackhole, 7 unreachable, 8 prohibit.</param>
public sealed record RouteSnapshot(string Destination, int Link, string? Gateway = null, int Table = 254, int Type = 1,
    string? PreferredSource = null, uint Metric = 0, List<NextHopSnapshot>? NextHops = null);

public sealed record NextHopSnapshot(int Link, string? Gateway);

/// <param name="State">"permanent", "noarp", "reachable", "stale", "failed", ... (NUD_*).</param>
public sealed record NeighbourSnapshot(int Link, string Address, string? Mac, string State);

/// <summary>One network's SNAT rule (the plugin's ipMasq): from these subnets, out of anything but the master, to anything but them.</summary>
public sealed record MasqueradeSnapshot(string Network, string Master, List<string> Subnets);

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(NodeSnapshot))]
partial class SnapshotJson : JsonSerializerContext;
