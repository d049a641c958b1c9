using System.Net.Sockets;
using System.Text.Json.Nodes;
using IpvlanCni.Network;

namespace IpvlanCni.Scenarios;

/// <summary>
/// A node with its two networks, built with our own netlink client: the node's namespace with business NIC ens10
/// and management NIC ens3, each a veth whose other end lives in an outside namespace (the business network's peer,
/// carrying the same VLANs; a management host behind the node that has no route to any pod), and pod namespaces
/// on demand. Everything is made through <see cref="RouteClient"/>; pods are attached only by the plugin.
/// <code>
/// using var lab = new Lab(Layout.DesignNote);            // a throw-away node namespace
/// var pod = lab.AddPod();
/// var added = lab.Cni.Add(lab.NetworkConfig("net1", lab.Layout.Segments[0]), pod, "c1").Succeeded("ADD");
/// </code>
/// </summary>
public sealed class Lab : IDisposable
{
    public const string BusinessNic = "ens10";
    public const string ManagementNic = "ens3";
    const string OutsideNic = "eth0";
    const int LoopbackIndex = 1; // LOOPBACK_IFINDEX

    readonly List<Pod> _pods = [];
    readonly List<string> _namedNamespaces = [];
    readonly bool _nodeIsCurrent;

    /// <param name="nodeIsCurrentNamespace">The calling thread's namespace is the node (the demo owns the sandbox); else a new one.</param>
    public Lab(Layout layout, bool nodeIsCurrentNamespace = false)
    {
        Layout = layout;
        Name = $"lab{Random.Shared.Next(0x1000000):x6}";
        _nodeIsCurrent = nodeIsCurrentNamespace;
        try
        {
            Node = nodeIsCurrentNamespace ? NetNamespace.OpenCurrent() : CreateNamespace("node");
            NodeClient = RouteClient.OpenIn(Node);
            Business = CreateNamespace("biz");
            Management = CreateNamespace("mgmt");
            Cni = new CniRuntime(Node);
            Build();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public Layout Layout { get; }
    /// <summary>Prefix of every namespace and folder this lab makes.</summary>
    public string Name { get; }
    public NetNamespace Node { get; } = null!;
    public RouteClient NodeClient { get; } = null!;
    /// <summary>The business network's peer: behind ens10 and its VLANs.</summary>
    public NetNamespace Business { get; } = null!;
    /// <summary>A host behind the node's management NIC ens3, with no route to any pod subnet.</summary>
    public NetNamespace Management { get; } = null!;
    public CniRuntime Cni { get; } = null!;
    public string StateDir => $"/tmp/{Name}/state";
    public string IpamDir => $"/tmp/{Name}/ipam";

    public static IpPrefix ManagementNodeAddress(Family family) =>
        IpPrefix.Parse(family == Family.IPv4 ? "192.168.3.1/24" : "fd00:0:3::1/64");

    public static IpPrefix ManagementPeerAddress(Family family) =>
        IpPrefix.Parse(family == Family.IPv4 ? "192.168.3.254/24" : "fd00:0:3::254/64");

    /// <summary>The node's primary address: the source of its default route, what "hostAccess": {} gives pods.</summary>
    public IpPrefix NodePrimaryAddress(Family family) => Layout.DefaultRouteOnMaster
        ? Layout.Segments[0].NodeAddress(family)!.Value
        : ManagementNodeAddress(family);

    /// <summary>A pod namespace with lo up (IPv6 duplicate address detection off, to keep ADD quick).</summary>
    public Pod AddPod()
    {
        var ns = CreateNamespace($"p{_pods.Count + 1}");
        var pod = new Pod(ns);
        _pods.Add(pod);
        DisableDad(ns);
        using var client = RouteClient.OpenIn(ns);
        client.ChangeLink(LoopbackIndex, new LinkChange { Up = true });
        return pod;
    }

    /// <summary>
    /// A dual-stack ipvlan-cni network on a segment's master: host-local IPAM over the segment's pod subnet
    /// (.10 to .99), default routes, this lab's state and IPAM folders.
    /// </summary>
    public JsonObject NetworkConfig(string network, Segment segment, int subnet = 0)
    {
        var ranges = new JsonArray();
        foreach (var family in Enum.GetValues<Family>())
        {
            var prefix = segment.PodSubnet(family, subnet);
            ranges.Add(new JsonArray(new JsonObject
            {
                ["subnet"] = prefix.Network.ToString(),
                ["rangeStart"] = Segment.RangeStart(prefix).ToString(),
                ["rangeEnd"] = Segment.RangeEnd(prefix).ToString(),
            }));
        }
        return new JsonObject
        {
            ["cniVersion"] = "1.1.0",
            ["name"] = network,
            ["type"] = "ipvlan-cni",
            ["master"] = segment.Master,
            ["mode"] = segment.ModeName,
            ["stateDir"] = StateDir,
            ["ipam"] = new JsonObject
            {
                ["type"] = "host-local",
                ["ranges"] = ranges,
                ["dataDir"] = IpamDir,
                ["routes"] = new JsonArray(new JsonObject { ["dst"] = "0.0.0.0/0" }, new JsonObject { ["dst"] = "::/0" }),
            },
        };
    }

    void Build()
    {
        DisableDad(Node);
        NodeClient.ChangeLink(LoopbackIndex, new LinkChange { Up = true });
        using var business = RouteClient.OpenIn(Business);
        using var management = RouteClient.OpenIn(Management);

        var ens3 = Connect(NodeClient, ManagementNic, management, Management);
        var ens10 = Connect(NodeClient, BusinessNic, business, Business);
        foreach (var family in Enum.GetValues<Family>())
        {
            AddAddress(NodeClient, ens3, ManagementNodeAddress(family));
            AddAddress(management, management.GetLink(OutsideNic).Index, ManagementPeerAddress(family));
        }

        foreach (var segment in Layout.Segments)
        {
            int peerLink = segment.Vlan == 0 ? business.GetLink(OutsideNic).Index : AddVlan(business, OutsideNic, segment.Vlan);
            int? nodeLink = !segment.NodeOwnsMaster ? null : segment.Vlan == 0 ? ens10 : AddVlan(NodeClient, BusinessNic, segment.Vlan);
            foreach (var family in Enum.GetValues<Family>())
            {
                AddAddress(business, peerLink, segment.PeerAddress(family));
                if (nodeLink is not { } index)
                    continue;
                var nodeAddress = segment.NodeAddress(family)!.Value;
                AddAddress(NodeClient, index, nodeAddress);
                // Peers reach l3 pods only through the node's address on their master (the design note).
                if (segment.Mode != IpvlanMode.L2)
                    business.AddRoute(new RouteInfo(segment.PodSupernet(family)) { Gateway = nodeAddress.Address, LinkIndex = peerLink });
            }
        }

        foreach (var family in Enum.GetValues<Family>())
        {
            var (gateway, link) = Layout.DefaultRouteOnMaster
                ? (Layout.Segments[0].PeerAddress(family), NodeClient.GetLink(Layout.Segments[0].Master).Index)
                : (ManagementPeerAddress(family), ens3);
            NodeClient.AddRoute(new RouteInfo(IpPrefix.Parse(family == Family.IPv4 ? "0.0.0.0/0" : "::/0")) { Gateway = gateway.Address, LinkIndex = link });
        }
        WaitForLinkLocalAddresses();
    }

    /// <summary>
    /// The kernel gives a link its IPv6 link-local address when the carrier comes up, a moment after "up": wait, so
    /// that the node is settled (and a snapshot taken now stays true) before the first pod.
    /// </summary>
    void WaitForLinkLocalAddresses()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var withLinkLocal = NodeClient.ListAddresses(AddressFamily.InterNetworkV6)
                .Where(a => a.Scope == RouteScope.Link).Select(a => a.LinkIndex).ToHashSet();
            var waiting = NodeClient.ListLinks().Where(l => l.IsUp && l.Index != LoopbackIndex && !withLinkLocal.Contains(l.Index)).ToList();
            if (waiting.Count == 0)
                return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"no IPv6 link-local address after 10 s on {string.Join(", ", waiting.Select(l => l.Name))}");
            Thread.Sleep(20);
        }
    }

    /// <summary>A veth from the node to an outside namespace (its end named eth0), both ends up; the node end's index.</summary>
    int Connect(RouteClient node, string name, RouteClient outside, NetNamespace outsideNs)
    {
        DisableDad(outsideNs);
        node.CreateLink(new VethLinkSpec(name, OutsideNic) { PeerNamespace = outsideNs });
        outside.ChangeLink(outside.GetLink(OutsideNic).Index, new LinkChange { Up = true });
        outside.ChangeLink(LoopbackIndex, new LinkChange { Up = true });
        int index = node.GetLink(name).Index;
        node.ChangeLink(index, new LinkChange { Up = true });
        return index;
    }

    static int AddVlan(RouteClient client, string parent, ushort vlan)
    {
        string name = $"{parent}.{vlan}";
        client.CreateLink(new VlanLinkSpec(name, client.GetLink(parent).Index, vlan));
        int index = client.GetLink(name).Index;
        client.ChangeLink(index, new LinkChange { Up = true });
        return index;
    }

    static void AddAddress(RouteClient client, int link, IpPrefix address) =>
        client.AddAddress(new AddressInfo(link, address) { Flags = address.Family == AddressFamily.InterNetworkV6 ? AddressFlags.NoDad : AddressFlags.None });

    /// <summary>Links made later in the namespace skip IPv6 duplicate address detection (a second of waiting each).</summary>
    static void DisableDad(NetNamespace ns)
    {
        ns.WriteSysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.WriteSysctl("net.ipv6.conf.default.accept_dad", "0");
    }

    NetNamespace CreateNamespace(string role)
    {
        string name = $"{Name}-{role}";
        var ns = NetNamespace.CreateNamed(name);
        _namedNamespaces.Add(name);
        return ns;
    }

    public void Dispose()
    {
        foreach (var pod in _pods)
            pod.Dispose();
        if (_nodeIsCurrent && NodeClient is not null)
        {
            // Deleting a veth deletes its peer; VLANs and routes go with their links.
            foreach (string nic in new[] { BusinessNic, ManagementNic })
                if (NodeClient.TryGetLink(nic) is { } link)
                    NodeClient.DeleteLink(link.Index);
        }
        NodeClient?.Dispose();
        foreach (var ns in new[] { Node, Business, Management })
            ns?.Dispose();
        foreach (string name in _namedNamespaces)
            NetNamespace.DeleteNamed(name);
        if (Directory.Exists($"/tmp/{Name}"))
            Directory.Delete($"/tmp/{Name}", recursive: true);
    }
}

/// <summary>A pod's namespace; CNI_NETNS is <see cref="Path"/>.</summary>
public sealed class Pod(NetNamespace ns) : IPodNamespace, IDisposable
{
    public NetNamespace Namespace { get; } = ns;
    public string Path => Namespace.Path;

    public void Dispose() => Namespace.Dispose();
}
