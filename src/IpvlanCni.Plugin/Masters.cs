using System.Globalization;
using System.Net.Sockets;
using IpvlanCni.Cni;
using IpvlanCni.Netlink;
using IpvlanCni.Network;

namespace IpvlanCni.Plugin;

/// <summary>Finds, creates (802.1Q) and checks the master a network's pods hang off.</summary>
static class Masters
{
    /// <summary>The master's name: configured, prevResult's single interface (chained), or the default route's device.</summary>
    public static InterfaceName ResolveName(PluginConfig config, RouteClient client)
    {
        var name = FindName(config, client);
        // ipMasq writes the name into nft and iptables-restore rule text, where a '"', ';' or '#' (all valid in
        // Linux interface names) would end or change the rule: refuse such a master instead of quoting it.
        if (config.IpMasq && name.Value.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('_' or '.' or '@' or '-')))
            throw PluginConfig.Invalid("master", $"\"{name}\" has characters other than letters, digits, '_', '.', '@' and '-', " +
                "which ipMasq cannot put into netfilter rules; rename the interface or turn ipMasq off");
        return name;
    }

    static InterfaceName FindName(PluginConfig config, RouteClient client)
    {
        if (config.Master is { } configured)
            return configured;
        if (config.Network.PrevResult is { } previous)
        {
            // A chained plugin wrote prevResult: its name is parsed like any other, never used as a path.
            if (previous.Interfaces.Count == 1 && previous.Interfaces[0].Name.Length > 0)
                return InterfaceName.Parse(previous.Interfaces[0].Name, "prevResult.interfaces[0].name");
            throw PluginConfig.Invalid("master", "not set, and prevResult does not name a single interface to use as master");
        }
        foreach (var route in client.ListRoutes(AddressFamily.InterNetwork).Concat(client.ListRoutes(AddressFamily.InterNetworkV6)))
        {
            if (route.Destination.PrefixLength != 0)
                continue;
            int index = route.LinkIndex != 0 ? route.LinkIndex : route.NextHops.FirstOrDefault()?.LinkIndex ?? 0;
            if (index != 0 && client.TryGetLink(index) is { } link)
                return InterfaceName.Parse(link.Name, "master");
        }
        throw PluginConfig.Invalid("master", "not set, and the node has no default route whose interface could serve as master");
    }

    /// <summary>"ens10.100" names VLAN 100 on ens10; null when the name has no such shape.</summary>
    public static (string Parent, ushort VlanId)? ParseVlanName(string name)
    {
        int dot = name.LastIndexOf('.');
        if (dot <= 0 || dot == name.Length - 1)
            return null;
        if (!ushort.TryParse(name.AsSpan(dot + 1), NumberStyles.None, CultureInfo.InvariantCulture, out ushort id) || id is 0 or > 4094)
            return null;
        return (name[..dot], id);
    }

    /// <summary>
    /// The master link, creating the configured 802.1Q sub-interface when it does not exist yet. The creation is
    /// recorded before it happens so that the last pod's DEL removes it, and only then.
    /// </summary>
    public static LinkInfo Ensure(InterfaceName name, RouteClient client, StateStore store, bool mayCreateVlan)
    {
        if (client.TryGetLink(name) is { } existing)
            return existing;
        if (!mayCreateVlan || ParseVlanName(name) is not var (parentName, vlanId))
            throw PluginConfig.Invalid("master", $"interface \"{name}\" does not exist");
        var parent = client.TryGetLink(parentName)
            ?? throw PluginConfig.Invalid("master", $"interface \"{name}\" does not exist, nor does \"{parentName}\" to create it on as VLAN {vlanId}");
        var record = store.TryLoadMaster(name) ?? new MasterRecord { Name = name };
        store.Save(record with { CreatedVlan = true });
        try
        {
            client.CreateLink(new VlanLinkSpec(name, parent.Index, vlanId));
        }
        catch (NetlinkException e)
        {
            store.Save(record);
            throw new CniException(CniErrorCode.KernelRefused, $"master: could not create VLAN {vlanId} on \"{parentName}\" as \"{name}\": {e.Message}");
        }
        var vlan = client.GetLink(name);
        client.ChangeLink(vlan.Index, new LinkChange { Up = true });
        return vlan;
    }

    /// <summary>
    /// The mode and flag the master's ipvlan port runs, when it has slaves: read from a live slave, since all slaves
    /// of a master share the port's mode and flag and the master itself does not report them.
    /// </summary>
    public static (IpvlanMode Mode, IpvlanFlag Flag, string Witness)? CurrentPortSetting(
        LinkInfo master, RouteClient client, StateStore store, IEnumerable<AttachmentRecord> attachments)
    {
        foreach (var attachment in attachments)
        {
            if (attachment.Master != master.Name || attachment.LinkInContainer)
                continue;
            var slave = TryReadPodLink(attachment);
            if (slave is { Kind: "ipvlan", IpvlanMode: { } mode, IpvlanFlag: { } flag } && slave.ParentIndex == master.Index)
                return (mode, flag, $"pod {attachment.ContainerId} ({attachment.IfName})");
        }
        // No pod of ours is alive on it: slaves made by others are only visible in this namespace.
        foreach (var link in client.ListLinks())
        {
            if (link.ParentIndex != master.Index || link.Index == master.Index)
                continue;
            if (link.Kind == "macvlan")
                throw MacvlanConflict(master.Name, $"macvlan link \"{link.Name}\"");
            if (link is { Kind: "ipvlan", IpvlanMode: { } mode, IpvlanFlag: { } flag })
                return (mode, flag, $"link \"{link.Name}\"");
        }
        return null;
    }

    /// <summary>
    /// The port link: a permanent ipvlan slave of ours in the master's namespace, down and without addresses, that
    /// exists while any pod of ours uses the master. All slaves of a master report the port's mode and flag, so one
    /// RTM_GETLINK of it reads what the kernel runs now, also after another tool's slave switched it (pods' slaves
    /// live in their own namespaces, where asking one costs a thread, a namespace switch and a socket).
    /// </summary>
    public static string PortName(LinkInfo master) => $"ipvlp{master.Index}";

    // IFLA_IFALIAS marks the port as ours: removal asks the kernel, not a name.
    const string PortAlias = "ipvlan-cni port";

    /// <summary>The live mode and flag from the master's port link; null when there is none (no pod of ours yet).</summary>
    public static (IpvlanMode Mode, IpvlanFlag Flag, string Witness)? ReadPort(LinkInfo master, RouteClient client) =>
        client.TryGetLink(PortName(master)) is { IpvlanMode: { } mode, IpvlanFlag: { } flag } port && IsPort(port, master)
            ? (mode, flag, $"its port link \"{port.Name}\"")
            : null;

    /// <summary>
    /// Creates the port link with the mode and flag the port already runs (or is about to: the caller has checked
    /// every slave it can see). A name taken by a link not ours leaves the master without a port: ADD then asks slaves.
    /// </summary>
    public static void CreatePort(LinkInfo master, RouteClient client, IpvlanMode mode, IpvlanFlag flag)
    {
        string name = PortName(master);
        try
        {
            client.CreateLink(new IpvlanLinkSpec(name, master.Index, mode, flag));
        }
        catch (NetlinkException e) when (e.IsExists)
        {
            return; // a concurrent ADD under another stateDir made it, or the name is someone else's
        }
        catch (NetlinkException e)
        {
            throw new CniException(CniErrorCode.KernelRefused, $"master: could not create the ipvlan port link \"{name}\" on \"{master.Name}\": {e.Message}");
        }
        if (client.TryGetLink(name) is { } port)
            client.ChangeLink(port.Index, new LinkChange { Alias = PortAlias });
    }

    /// <summary>Removes the master's port link, when the kernel confirms it is ours (the master's last pod is gone).</summary>
    public static void RemovePort(string masterName, RouteClient client)
    {
        if (client.TryGetLink(masterName) is { } master && client.TryGetLink(PortName(master)) is { } port && IsPort(port, master))
            client.DeleteLink(port.Index);
    }

    static bool IsPort(LinkInfo link, LinkInfo master) =>
        link is { Kind: "ipvlan", Alias: PortAlias, IsUp: false } && link.ParentIndex == master.Index;

    /// <summary>The live link is a VLAN on the parent its name says ("ens10.100": VLAN of ens10): still the one we made.</summary>
    public static bool IsVlanWeNamed(RouteClient client, LinkInfo link, InterfaceName name) =>
        link.Kind == "vlan" && ParseVlanName(name) is var (parent, _) && client.TryGetLink(parent) is { } parentLink
        && link.ParentIndex == parentLink.Index;

    public static CniException MacvlanConflict(string master, string what) => PluginConfig.Invalid("master",
        $"\"{master}\" already carries {what}: a master cannot carry macvlan and ipvlan links at once");

    public static CniException ModeConflict(string master, (IpvlanMode Mode, IpvlanFlag Flag, string Witness) current, IpvlanMode mode, IpvlanFlag flag) =>
        PluginConfig.Invalid(current.Mode != mode ? "mode" : "flag",
            $"master \"{master}\" runs ipvlan mode {Describe(current.Mode)} flag {Describe(current.Flag)} (seen on {current.Witness}), " +
            $"this network asks for mode {Describe(mode)} flag {Describe(flag)}. All slaves of a master share one mode and flag, and the " +
            "kernel would silently switch every existing pod; use another master (for example a VLAN sub-interface) for this network");

    static LinkInfo? TryReadPodLink(AttachmentRecord attachment)
    {
        try
        {
            using var ns = NetNamespace.Open(attachment.NetnsPath);
            using var pod = RouteClient.OpenIn(ns);
            return pod.TryGetLink(attachment.IfName);
        }
        catch (Exception e) when (e is NamespaceException or NetlinkException or IOException or UnauthorizedAccessException)
        {
            return null; // the pod is gone; its record waits for DEL or GC
        }
    }

    public static string Describe(IpvlanMode mode) => mode switch { IpvlanMode.L2 => "l2", IpvlanMode.L3 => "l3", _ => "l3s" };
    public static string Describe(IpvlanFlag flag) => flag switch { IpvlanFlag.Bridge => "bridge", IpvlanFlag.Private => "private", _ => "vepa" };
}
