using System.Net;
using System.Net.Sockets;
using IpvlanCni.Cni;
using IpvlanCni.Netlink;
using IpvlanCni.Network;

namespace IpvlanCni.Plugin;

/// <summary>
/// The node's end of host access and egress through the node (the design note's methods 2 and 3): a host-side
/// ipvlan slave of the master, NOARP, carrying node addresses (and with egress "host" the pods' gateway) as host
/// routes, and a host route per pod through it. The node's stack never sees frames between the master's slaves
/// and the master itself, so this slave is the node's only door to its pods.
/// </summary>
static class HostSide
{
    /// <summary>"ipvlh" + the master's ifindex: stable across ADDs, at most 15 bytes.</summary>
    public static InterfaceName DefaultInterfaceName(LinkInfo master) => InterfaceName.Parse($"ipvlh{master.Index}", "hostAccess.interface");

    /// <summary>The addresses the host-side slave carries for this pod's families.</summary>
    public static List<IPAddress> Addresses(PluginConfig config, RouteClient host, CniResult ipam)
    {
        var families = ipam.Ips.Select(ip => ip.Address.Family).Distinct().ToList();
        var addresses = new List<IPAddress>();
        if (config.HostAccess is { } access)
            addresses.AddRange(access.Addresses.Count > 0 ? access.Addresses : families.SelectMany(f => PrimaryAddress(host, f)));
        if (config.Egress == EgressMode.Host)
            addresses.AddRange(ipam.Ips.Select(ip => ip.Gateway).OfType<IPAddress>());
        return addresses.Where(a => families.Contains(a.AddressFamily)).Distinct().ToList();
    }

    /// <summary>The node's primary address of a family: the source of its default route.</summary>
    static IEnumerable<IPAddress> PrimaryAddress(RouteClient host, AddressFamily family)
    {
        var defaultRoute = host.ListRoutes(family).FirstOrDefault(r => r.Destination.PrefixLength == 0 && r.Type == 1);
        if (defaultRoute is null)
            yield break;
        if (defaultRoute.PreferredSource is { } source)
        {
            yield return source;
            yield break;
        }
        int linkIndex = defaultRoute.LinkIndex != 0 ? defaultRoute.LinkIndex : defaultRoute.NextHops.FirstOrDefault()?.LinkIndex ?? 0;
        var address = host.ListAddresses(family, linkIndex)
            .FirstOrDefault(a => a.Scope == RouteScope.Universe && !a.Flags.HasFlag(AddressFlags.Secondary));
        if (address is not null)
            yield return address.Prefix.Address;
    }

    /// <summary>
    /// Creates or reuses the host-side slave and puts the addresses on it. Every creation is recorded before it
    /// happens, so the last pod's DEL removes exactly what the plugin added.
    /// </summary>
    public static LinkInfo Ensure(PluginConfig config, LinkInfo master, RouteClient host, StateStore store, IReadOnlyList<IPAddress> addresses)
    {
        var name = config.HostAccess?.Interface ?? DefaultInterfaceName(master);
        var masterName = InterfaceName.Parse(master.Name, "master");
        var record = store.TryLoadMaster(masterName) ?? new MasterRecord { Name = masterName };
        if (record.HostInterface is { } known && known != name)
            throw PluginConfig.Invalid("hostAccess.interface", $"master \"{master.Name}\" already has host-side interface \"{known}\"; every network on one master must use the same one");

        var link = host.TryGetLink(name);
        if (link is null)
        {
            record = record with { HostInterface = name, CreatedHostInterface = true };
            store.Save(record);
            host.CreateLink(new IpvlanLinkSpec(name, master.Index, config.Mode, config.Flag));
            link = host.GetLink(name);
            host.ChangeLink(link.Index, new LinkChange { Up = true });
            // After up: ipvlan_open() sets NOARP from the port mode (clears it in l2).
            host.ChangeLink(link.Index, new LinkChange { NoArp = true });
        }
        else if (link.Kind != "ipvlan" || link.ParentIndex != master.Index)
        {
            throw PluginConfig.Invalid("hostAccess.interface", $"\"{name}\" exists and is not an ipvlan link of \"{master.Name}\"");
        }
        else if (record.HostInterface is null)
        {
            record = record with { HostInterface = name };
            store.Save(record);
        }

        var present = host.ListAddresses(AddressFamily.Unspecified, link.Index).Select(a => a.Prefix.Address).ToHashSet();
        foreach (var address in addresses.Where(a => !present.Contains(a)))
        {
            var prefix = IpPrefix.Host(address);
            record = record with { HostAddresses = [.. record.HostAddresses, prefix.ToString()] };
            store.Save(record);
            // The node address also lives on another link: duplicate address detection would fail it.
            host.AddAddress(new AddressInfo(link.Index, prefix) { Flags = AddressFlags.NoDad });
        }
        return link;
    }

    /// <summary>A host route per pod address through the host-side slave.</summary>
    public static void AddPodRoutes(RouteClient host, LinkInfo hostLink, IEnumerable<IpPrefix> podAddresses)
    {
        foreach (var address in podAddresses)
            host.ReplaceRoute(PodRoute(hostLink.Index, address));
    }

    public static RouteInfo PodRoute(int hostLinkIndex, IpPrefix podAddress) =>
        new(IpPrefix.Host(podAddress.Address)) { LinkIndex = hostLinkIndex, Scope = RouteScope.Link };

    /// <summary>Removes one pod's host routes; already-gone routes and links are not errors.</summary>
    public static void DeletePodRoutes(RouteClient host, InterfaceName hostInterface, IEnumerable<IpPrefix> podAddresses)
    {
        if (host.TryGetLink(hostInterface) is not { } link)
            return;
        foreach (var address in podAddresses)
        {
            try
            {
                host.DeleteRoute(PodRoute(link.Index, address));
            }
            catch (NetlinkException e) when (e.IsNotFound)
            {
            }
        }
    }

    /// <summary>
    /// With the master's last pod gone: remove what the plugin added, and the slave if it created it. Only while the
    /// live link is still that slave (ipvlan, on this master): a link someone put under the name since is not ours.
    /// </summary>
    public static void Release(RouteClient host, MasterRecord record, LinkInfo? master)
    {
        if (record.HostInterface is not { } name || host.TryGetLink(name) is not { } link)
            return;
        if (master is null || link.Kind != "ipvlan" || link.ParentIndex != master.Index)
            return;
        if (record.CreatedHostInterface)
        {
            host.DeleteLink(link.Index); // its addresses and routes go with it
            return;
        }
        foreach (string text in record.HostAddresses)
        {
            try
            {
                host.DeleteAddress(new AddressInfo(link.Index, IpPrefix.Parse(text)));
            }
            catch (NetlinkException e) when (e.IsNotFound || e.Errno == 99 /* EADDRNOTAVAIL */)
            {
            }
        }
    }

    /// <summary>Packets from pods to other networks are forwarded by the node when it is their gateway.</summary>
    public static void EnableForwarding(IEnumerable<AddressFamily> families)
    {
        foreach (var family in families.Distinct())
        {
            string path = family == AddressFamily.InterNetwork ? "/proc/sys/net/ipv4/ip_forward" : "/proc/sys/net/ipv6/conf/all/forwarding";
            try
            {
                if (File.ReadAllText(path).Trim() != "1")
                    File.WriteAllText(path, "1");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CniException(CniErrorCode.IoFailure, $"egress \"host\": cannot turn on forwarding in {path} ({e.GetType().Name})");
            }
        }
    }
}
