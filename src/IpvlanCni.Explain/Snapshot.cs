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

    /// <summary>The recorded node as the model reads it: everything is there already.</summary>
    public NodeView ToView() => new(Node,
        [.. Namespaces.Select(n => new NamespaceView(n.Id, n.Device, n.Inode, n.Links, n.Addresses,
            () => new RoutingSnapshot(n.ForwardingIPv4, n.ForwardingIPv6, n.Routes, n.Neighbours)))],
        () => Masquerade);
}

/// <summary>
/// A node as the model reads it. Every namespace's links and addresses are there from the start: any walk may ask
/// who holds an address or which slaves a port has, and they join the topology. A namespace's routing (routes,
/// neighbours, forwarding switches) and the plugin's NAT records are read the first time the walk needs them,
/// once: a recorded <see cref="NodeSnapshot"/> has them all already; the live node (<see cref="LiveNode"/>) reads
/// them then, so a question about two pods on a node with fifty reads the routing of the few namespaces it crosses.
/// </summary>
public sealed class NodeView(string node, IReadOnlyList<NamespaceView> namespaces, Func<List<MasqueradeSnapshot>?> masquerade)
{
    readonly Lazy<List<MasqueradeSnapshot>?> _masquerade = new(masquerade, LazyThreadSafetyMode.None);

    /// <summary>The <see cref="NamespaceView.Id"/> of the node's own namespace.</summary>
    public string Node { get; } = node;
    public IReadOnlyList<NamespaceView> Namespaces { get; } = namespaces;
    /// <summary>Our ipMasq rules per network, from the plugin's records; null: not known (records unreadable).</summary>
    public List<MasqueradeSnapshot>? Masquerade => _masquerade.Value;
}

/// <summary>One namespace of a <see cref="NodeView"/>: links and addresses now, <see cref="Routing"/> on first use.</summary>
public sealed class NamespaceView(string id, ulong device, ulong inode, List<LinkSnapshot> links, List<AddressSnapshot> addresses,
    Func<RoutingSnapshot> routing)
{
    readonly Lazy<RoutingSnapshot> _routing = new(routing, LazyThreadSafetyMode.None);

    public string Id { get; } = id;
    public ulong Device { get; } = device;
    public ulong Inode { get; } = inode;
    public List<LinkSnapshot> Links { get; } = links;
    public List<AddressSnapshot> Addresses { get; } = addresses;
    public RoutingSnapshot Routing => _routing.Value;
}

/// <summary>What a namespace's stack decides with: forwarding switches, routes (every table), neighbours.</summary>
public sealed record RoutingSnapshot(bool ForwardingIPv4, bool ForwardingIPv6, List<RouteSnapshot> Routes, List<NeighbourSnapshot> Neighbours);

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
