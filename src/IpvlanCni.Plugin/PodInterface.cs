using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using IpvlanCni.Cni;
using IpvlanCni.Netlink;
using IpvlanCni.Network;

namespace IpvlanCni.Plugin;

/// <summary>What the pod needs to reach node addresses directly over its ipvlan link (host access, egress host).</summary>
public sealed record PodHostRoutes(IReadOnlyList<IPAddress> Addresses, PhysicalAddress SharedMac);

/// <summary>The container side: the ipvlan slave, its addresses and routes.</summary>
static class PodInterface
{
    const int LoopbackIndex = 1; // LOOPBACK_IFINDEX: lo is the first device of every namespace

    /// <summary>
    /// Creates the slave directly in the pod's namespace under a temporary name, renames it, addresses it, brings
    /// lo and it up, and adds routes. Returns the link as the kernel reports it.
    /// </summary>
    public static LinkInfo Create(PluginConfig config, LinkInfo master, RouteClient creator, RouteClient pod, NetNamespace podNs,
        AttachmentRecord record, CniResult ipam, PodHostRoutes? hostRoutes, Action<string> reach)
    {
        var link = CreateLink(config, master, creator, pod, podNs, record, reach, up: false);
        Configure(config, pod, podNs, link, ipam, hostRoutes, bringUp: true);
        return link;
    }

    /// <summary>
    /// The slave alone: created in the pod's namespace under a temporary name and renamed to CNI_IFNAME; with
    /// <paramref name="up"/>, brought up with lo (for IPAM that runs a client on it, such as DHCP).
    /// </summary>
    public static LinkInfo CreateLink(PluginConfig config, LinkInfo master, RouteClient creator, RouteClient pod, NetNamespace podNs,
        AttachmentRecord record, Action<string> reach, bool up)
    {
        var spec = new IpvlanLinkSpec(record.TemporaryName, master.Index, config.Mode, config.Flag)
        {
            Mtu = config.Mtu,
            Namespace = config.LinkInContainer ? null : podNs,
        };
        try
        {
            creator.CreateLink(spec);
        }
        catch (NetlinkException e) when (e.Errno == 16 /* EBUSY: the master's rx_handler belongs to another driver */)
        {
            throw Masters.MacvlanConflict(master.Name, "another kind of link (macvlan, or it is a bridge or bond port)");
        }
        catch (NetlinkException e)
        {
            throw new CniException(CniErrorCode.KernelRefused, $"could not create the ipvlan link on \"{master.Name}\": {e.Message}");
        }

        reach("link-created");
        var link = pod.GetLink(record.TemporaryName);
        // Announce the addresses when the link comes up, like the reference plugin: arp_notify goes with the rename
        // (netlink, no thread in the pod's namespace).
        pod.ChangeLink(link.Index, new LinkChange { Name = record.IfName, ArpNotify = true, Up = up ? true : null });
        if (up)
            pod.ChangeLink(LoopbackIndex, new LinkChange { Up = true });
        return link with { Name = record.IfName };
    }

    /// <summary>Addresses and routes from IPAM on the pod's link (and lo and it up, unless they are already).</summary>
    public static void Configure(PluginConfig config, RouteClient pod, NetNamespace podNs, LinkInfo link, CniResult ipam,
        PodHostRoutes? hostRoutes, bool bringUp)
    {
        // IPv6's ndisc_notify has only the sysctl (best effort: IPv6 may be off), written only for a pod with IPv6
        // addresses.
        if (ipam.Ips.Any(ip => ip.Address.Family == AddressFamily.InterNetworkV6))
        {
            try
            {
                podNs.TryWriteSysctls(($"net.ipv6.conf.{link.Name}.ndisc_notify", "1"));
            }
            catch (NamespaceException)
            {
            }
        }

        // An address the IPAM client already put on the link (a delegated dhcp may) is not added twice.
        var present = bringUp ? [] : pod.ListAddresses(AddressFamily.Unspecified, link.Index).Select(a => a.Prefix.Address).ToHashSet();
        foreach (var ip in ipam.Ips)
            if (!present.Contains(ip.Address.Address))
                pod.AddAddress(new AddressInfo(link.Index, ip.Address));
        if (bringUp)
        {
            pod.ChangeLink(link.Index, new LinkChange { Up = true });
            pod.ChangeLink(LoopbackIndex, new LinkChange { Up = true });
        }

        if (hostRoutes is not null)
            AddHostRoutes(pod, link.Index, config.Mode, hostRoutes);
        var routes = Routes(config, ipam, link.Index);
        if (routes.Any(r => r.Gateway is { AddressFamily: AddressFamily.InterNetworkV6 }))
            WaitForDad(pod, link.Index);
        foreach (var route in routes)
            pod.AddRoute(route);
    }

    /// <summary>
    /// Routes from IPAM. A route without a gateway goes via the address's gateway in l2 (the reference plugin's
    /// rule); in l3 and l3s the master routes, so it is a device route ("default dev eth0", as the design note says).
    /// </summary>
    public static List<RouteInfo> Routes(PluginConfig config, CniResult ipam, int linkIndex)
    {
        var routes = new List<RouteInfo>();
        foreach (var route in ipam.Routes)
        {
            var gateway = route.Gateway;
            if (gateway is null && config.Mode == IpvlanMode.L2)
                gateway = ipam.Ips.FirstOrDefault(ip => ip.Gateway is not null && ip.Address.Family == route.Destination.Family)?.Gateway;
            routes.Add(new RouteInfo(route.Destination.Network)
            {
                Gateway = gateway,
                LinkIndex = linkIndex,
                Scope = gateway is null ? RouteScope.Link : RouteScope.Universe,
                Metric = route.Priority is { } priority ? (uint)priority : null,
                Mtu = route.Mtu,
                AdvertisedMss = route.AdvMss,
                Table = route.Table ?? RouteInfo.MainTable,
            });
        }
        return routes;
    }

    /// <summary>
    /// Node addresses are reached straight over the link: a host route each, and in l2 a permanent neighbour entry
    /// with the shared MAC, so neither side ever ARPs (the host-side slave is NOARP).
    /// </summary>
    static void AddHostRoutes(RouteClient pod, int linkIndex, IpvlanMode mode, PodHostRoutes hostRoutes)
    {
        foreach (var address in hostRoutes.Addresses)
        {
            if (mode == IpvlanMode.L2)
                pod.AddNeighbour(new NeighbourInfo(linkIndex, address, hostRoutes.SharedMac));
            pod.ReplaceRoute(new RouteInfo(IpPrefix.Host(address)) { LinkIndex = linkIndex, Scope = RouteScope.Link });
        }
    }

    /// <summary>A gateway route needs a usable (non-tentative) IPv6 address; wait for duplicate address detection.</summary>
    static void WaitForDad(RouteClient pod, int linkIndex)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var tentative = pod.ListAddresses(AddressFamily.InterNetworkV6, linkIndex)
                .Where(a => a.Flags.HasFlag(AddressFlags.Tentative)).ToList();
            if (tentative.Count == 0)
                return;
            if (tentative.Any(a => a.Flags.HasFlag(AddressFlags.DadFailed)))
                throw new CniException(CniErrorCode.KernelRefused, $"duplicate address detection failed for {tentative[0].Prefix}");
            if (deadline.Elapsed > TimeSpan.FromSeconds(10))
                throw new CniException(CniErrorCode.KernelRefused, $"{tentative[0].Prefix} is still tentative after 10 s of duplicate address detection");
            Thread.Sleep(20);
        }
    }

    /// <summary>
    /// Removes the pod's link: under its name when <paramref name="mayDeleteName"/> (no other attachment claims it),
    /// else or when absent under the temporary name an ADD that stopped before its rename left. Only a link that is
    /// still ours: an ipvlan slave of the master (<paramref name="masterIndex"/>, asked only when a candidate exists;
    /// null: nothing tells which links are ours). Checked and deleted by ifindex: two messages for a live pod.
    /// </summary>
    public static void Delete(RouteClient pod, AttachmentRecord? record, InterfaceName ifName, bool mayDeleteName, Func<int?> masterIndex)
    {
        if (mayDeleteName && TryDeleteSlave(pod, ifName, masterIndex))
            return; // renamed, so the temporary name is gone with it
        if (record is not null)
            TryDeleteSlave(pod, record.TemporaryName, masterIndex);
    }

    static bool TryDeleteSlave(RouteClient pod, InterfaceName name, Func<int?> masterIndex)
    {
        if (pod.TryGetLink(name) is not { Kind: "ipvlan" } link || masterIndex() is not { } parent || link.ParentIndex != parent)
            return false;
        pod.TryDeleteLink(link.Index);
        return true;
    }
}
