using System.Net;
using System.Net.Sockets;
using IpvlanCni.Network;

namespace IpvlanCni.Explain;

/// <summary>
/// A <see cref="NodeView"/> parsed into objects the model walks: namespaces, links joined to their ipvlan ports,
/// VLAN parents and veth peers; a namespace's routing and the NAT records when first used. Parsing is the only
/// check: a snapshot that does not parse is refused here (its routing when the walk reads it).
/// </summary>
sealed class Topology
{
    readonly Lazy<List<MasqueradeRule>?> _masquerade;

    public Topology(NodeView view)
    {
        Namespaces = [.. view.Namespaces.Select(n => new Ns(n, n.Id == view.Node))];
        Node = Namespaces.SingleOrDefault(n => n.IsNode) ?? throw new FormatException($"snapshot: no namespace \"{view.Node}\" (the node)");
        _masquerade = new(() => view.Masquerade?.Select(m => new MasqueradeRule(m.Network, m.Master, [.. m.Subnets.Select(IpPrefix.Parse)])).ToList(),
            LazyThreadSafetyMode.None);
        foreach (var ns in Namespaces)
            foreach (var link in ns.Links.Values)
                Join(link);
    }

    public List<Ns> Namespaces { get; }
    public Ns Node { get; }
    /// <summary>null: the plugin's NAT records could not be read.</summary>
    public List<MasqueradeRule>? Masquerade => _masquerade.Value;

    public Ns? Find(string id) => Namespaces.FirstOrDefault(n => n.Id == id);

    /// <summary>Where an address lives: the namespace and link holding it (first found; addresses are unique on a node).</summary>
    public (Ns Ns, Link Link)? Holder(IPAddress address)
    {
        foreach (var ns in Namespaces)
            if (ns.Addresses.FirstOrDefault(a => a.Prefix.Address.Equals(address)) is { } held)
                return (ns, held.Link);
        return null;
    }

    void Join(Link link)
    {
        switch (link.Kind)
        {
            case "ipvlan":
                var master = link.ParentNamespaceId is null ? link.Ns.Links.GetValueOrDefault(link.Parent) : FindMaster(link);
                if (master is null)
                    return;
                master.OwnPort ??= new Port(master);
                master.OwnPort.Slaves.Add(link);
                link.Port = master.OwnPort;
                break;
            case "vlan":
                link.Lower = link.ParentNamespaceId is null ? link.Ns.Links.GetValueOrDefault(link.Parent) : null;
                link.Lower?.Uppers.Add(link);
                break;
            case "veth":
                link.Peer = link.ParentNamespaceId is null ? link.Ns.Links.GetValueOrDefault(link.Parent) : FindVethPeer(link);
                break;
        }
    }

    // A slave in another namespace names its master by ifindex in the master's namespace (IFLA_LINK with
    // IFLA_LINK_NETNSID); slaves copy the master's MAC (ipvlan_link_new), so index and MAC together find it.
    Link? FindMaster(Link slave)
    {
        var candidates = Namespaces.Where(n => n != slave.Ns)
            .Select(n => n.Links.GetValueOrDefault(slave.Parent))
            .OfType<Link>()
            .Where(l => l.Kind != "ipvlan" && l.Mac == slave.Mac)
            .ToList();
        return candidates.FirstOrDefault(l => l.Ns.IsNode) ?? (candidates.Count == 1 ? candidates[0] : null);
    }

    // A veth names its peer by ifindex in the peer's namespace: a peer that names it back, and only one.
    Link? FindVethPeer(Link veth)
    {
        var candidates = Namespaces.Where(n => n != veth.Ns)
            .Select(n => n.Links.GetValueOrDefault(veth.Parent))
            .OfType<Link>()
            .Where(l => l.Kind == "veth" && l.Parent == veth.Index && l.ParentNamespaceId is not null)
            .ToList();
        return candidates.Count == 1 ? candidates[0] : null;
    }
}

sealed record MasqueradeRule(string Network, string Master, List<IpPrefix> Subnets);

/// <summary>One network namespace; its routes, neighbours and forwarding switches are read when first used.</summary>
sealed class Ns
{
    readonly Lazy<(List<Route> Routes, List<Neighbour> Neighbours, bool ForwardingIPv4, bool ForwardingIPv6)> _routing;

    public Ns(NamespaceView raw, bool isNode)
    {
        Id = raw.Id;
        IsNode = isNode;
        Label = isNode ? "node" : raw.Id.StartsWith(NetNamespace.NamedDirectory + "/", StringComparison.Ordinal) ? Path.GetFileName(raw.Id)
            : raw.Id.StartsWith("/proc/", StringComparison.Ordinal) ? $"pid {raw.Id.Split('/')[2]}" : raw.Id;
        Links = raw.Links.ToDictionary(l => l.Index, l => new Link(this, l));
        Addresses = [.. raw.Addresses.Where(a => Links.ContainsKey(a.Link)).Select(a => new Address(Links[a.Link], IpPrefix.Parse(a.Prefix), a.Tentative))];
        _routing = new(() => Parse(raw.Routing), LazyThreadSafetyMode.None);
    }

    (List<Route>, List<Neighbour>, bool, bool) Parse(RoutingSnapshot raw) => (
        [.. raw.Routes.Where(r => r.Table == RouteInfo.MainTable).Select(r => new Route(
            IpPrefix.Parse(r.Destination),
            Links.GetValueOrDefault(r.Link) ?? r.NextHops?.Select(h => Links.GetValueOrDefault(h.Link)).FirstOrDefault(l => l is not null),
            (r.Gateway ?? r.NextHops?.FirstOrDefault()?.Gateway) is { } gateway ? IPAddress.Parse(gateway) : null,
            r.Type, r.PreferredSource is { } source ? IPAddress.Parse(source) : null, r.Metric))],
        [.. raw.Neighbours.Where(n => Links.ContainsKey(n.Link)).Select(n => new Neighbour(Links[n.Link], IPAddress.Parse(n.Address), n.Mac, n.State))],
        raw.ForwardingIPv4, raw.ForwardingIPv6);

    public string Id { get; }
    /// <summary>How the text names it: "node", the /run/netns name, "pid 123".</summary>
    public string Label { get; }
    public bool IsNode { get; }
    public bool ForwardingIPv4 => _routing.Value.ForwardingIPv4;
    public bool ForwardingIPv6 => _routing.Value.ForwardingIPv6;
    public Dictionary<int, Link> Links { get; }
    public List<Address> Addresses { get; }
    public List<Route> Routes => _routing.Value.Routes;
    public List<Neighbour> Neighbours => _routing.Value.Neighbours;

    public bool Forwarding(AddressFamily family) => family == AddressFamily.InterNetwork ? ForwardingIPv4 : ForwardingIPv6;

    /// <summary>Addresses the stack treats as its own: on a link that is up (the local table), plus loopback's.</summary>
    public Address? Local(IPAddress address) =>
        Addresses.FirstOrDefault(a => a.Link.Up && !a.Tentative && a.Prefix.Address.Equals(address))
        ?? (IPAddress.IsLoopback(address) ? Addresses.FirstOrDefault(a => a.Link.IsLoopback) : null);

    public override string ToString() => Label;
}

sealed class Link(Ns ns, LinkSnapshot raw)
{
    public Ns Ns { get; } = ns;
    public int Index { get; } = raw.Index;
    public string Name { get; } = raw.Name;
    public string? Kind { get; } = raw.Kind;
    public int Parent { get; } = raw.Parent;
    public int? ParentNamespaceId { get; } = raw.ParentNamespaceId;
    public string Mac { get; } = raw.Mac;
    public bool Up { get; } = raw.Up;
    public bool NoArp { get; } = raw.NoArp;
    public int? VlanId { get; } = raw.VlanId;
    public bool IsLoopback => Index == 1;
    /// <summary>What this slave reports as its port's mode and flag.</summary>
    public IpvlanMode? RawMode { get; } = raw.Mode switch { "l2" => IpvlanMode.L2, "l3" => IpvlanMode.L3, "l3s" => IpvlanMode.L3S, _ => null };
    public IpvlanFlag? RawFlag { get; } = raw.Flag switch { "bridge" => IpvlanFlag.Bridge, "private" => IpvlanFlag.Private, "vepa" => IpvlanFlag.Vepa, _ => null };

    /// <summary>The ipvlan port this link is a slave of.</summary>
    public Port? Port { get; set; }
    /// <summary>The ipvlan port this link is the master of.</summary>
    public Port? OwnPort { get; set; }
    /// <summary>A VLAN's parent.</summary>
    public Link? Lower { get; set; }
    public List<Link> Uppers { get; } = [];
    /// <summary>A veth's other end, when the snapshot holds its namespace.</summary>
    public Link? Peer { get; set; }

    public IEnumerable<Address> AddressesOf(AddressFamily family) => Ns.Addresses.Where(a => a.Link == this && a.Prefix.Family == family);

    /// <summary>"eth0 (l3 slave of ens10.200)", "ens10.200 (ipvlan master, l3 bridge)".</summary>
    public string Describe() =>
        Port is { } port ? $"{Name} ({port.ModeName} slave of {port.Master.Name})"
        : OwnPort is { } own ? $"{Name} (ipvlan master, {own.ModeName} {own.FlagName})"
        : Name;

    public override string ToString() => Name;
}

/// <summary>struct ipvl_port: one per master, the mode and flag every slave shares, and the address hash.</summary>
sealed class Port(Link master)
{
    public Link Master { get; } = master;
    public List<Link> Slaves { get; } = [];
    // The port's mode and flag: every slave reports the same ones (ipvlan_set_port_mode switches them all).
    public IpvlanMode Mode => Slaves.Select(s => s.RawMode).OfType<IpvlanMode>().FirstOrDefault();
    public IpvlanFlag Flag => Slaves.Select(s => s.RawFlag).OfType<IpvlanFlag>().FirstOrDefault();
    public string ModeName => Mode switch { IpvlanMode.L2 => "l2", IpvlanMode.L3 => "l3", _ => "l3s" };
    public string FlagName => Flag switch { IpvlanFlag.Bridge => "bridge", IpvlanFlag.Private => "private", _ => "vepa" };
    public bool IsPrivate => Flag == IpvlanFlag.Private;
    public bool IsVepa => Flag == IpvlanFlag.Vepa;
}

sealed record Address(Link Link, IpPrefix Prefix, bool Tentative);
/// <param name="Type">rtm_type (1 unicast, 2 local, 6 blackhole, 7 unreachable, 8 prohibit).</param>
sealed record Route(IpPrefix Destination, Link? Link, IPAddress? Gateway, int Type, IPAddress? PreferredSource, uint Metric)
{
    public override string ToString()
    {
        string destination = Destination.PrefixLength == 0 ? "default" : Destination.ToString();
        string kind = Type switch { 6 => "blackhole ", 7 => "unreachable ", 8 => "prohibit ", _ => "" };
        return $"{kind}{destination}{(Gateway is { } gateway ? $" via {gateway}" : "")}{(Link is { } link ? $" dev {link.Name}" : "")}";
    }
}
sealed record Neighbour(Link Link, IPAddress Address, string? Mac, string State);
