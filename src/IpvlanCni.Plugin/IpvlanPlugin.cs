using System.Net;
using System.Net.Sockets;
using IpvlanCni.Cni;
using IpvlanCni.Ipam;
using IpvlanCni.Netlink;
using IpvlanCni.Network;

namespace IpvlanCni.Plugin;

/// <summary>
/// The ipvlan CNI plugin. Every ADD writes its attachment record before it changes anything and then takes its
/// steps in an order DEL can undo from that record alone; a failed ADD runs the same teardown as DEL.
/// Host-side changes happen under one node-wide lock (ipvlan port mode, host-side slave, VLAN, NAT rules).
/// </summary>
public sealed class IpvlanPlugin : ICniPlugin
{
    public CniResult Add(CniRequest request)
    {
        var config = PluginConfig.Parse(request);
        ValidateForAdd(config);
        using var podNs = OpenPodNamespace(request.NetnsPath);
        var store = new StateStore(config.StateDir);
        using var nodeLock = store.Lock();
        using var pod = RouteClient.OpenIn(podNs);
        using var host = config.LinkInContainer ? RouteClient.OpenIn(podNs) : RouteClient.Open();

        if (store.TryLoadAttachment(config.Network.Name, request.ContainerId, request.IfName) is not null)
            throw new CniException(CniErrorCode.AlreadyExists,
                $"container {request.ContainerId} already has {request.IfName} on network {config.Network.Name}; DEL it first");
        if (pod.TryGetLink(request.IfName) is not null)
            throw new CniException(CniErrorCode.AlreadyExists, $"CNI_IFNAME: interface \"{request.IfName}\" already exists in {request.NetnsPath}");

        string masterName = Masters.ResolveName(config, host);
        var record = new AttachmentRecord
        {
            Network = config.Network.Name,
            ContainerId = request.ContainerId,
            IfName = request.IfName,
            NetnsPath = request.NetnsPath,
            Master = masterName,
            TemporaryName = TemporaryName(),
            LinkInContainer = config.LinkInContainer,
        };
        // The addresses the node holds: its namespace's, and with linkInContainer also the master's namespace's.
        using var node = config.LinkInContainer ? RouteClient.Open() : null;
        var nodeAddresses = node is null ? NodeAddresses.Read(host) : NodeAddresses.Read(node, host);
        var ipam = config.Ipam is { } ipamConfig ? IpamFactory.Create(ipamConfig, request, nodeAddresses) : null;
        // Before the record: a missing IPAM plugin would also fail the rollback's release and strand the record.
        if (ipam is DelegatingIpam delegating)
            delegating.FindPlugin(request.PluginPaths);
        void Reach(string step) => FaultPoints.Reach(step, request.Environment);
        store.Save(record);
        try
        {
            Reach("recorded");
            var master = Masters.Ensure(masterName, host, store, mayCreateVlan: !config.LinkInContainer);
            CheckMaster(config, master, host, store, record);
            Reach("master-ready");

            var addresses = ipam is null ? PreviousAddresses(config) : ipam.Allocate(request);
            if (addresses.Ips.Count == 0)
                throw new CniException(CniErrorCode.InvalidNetworkConfig, "ipam: no IP addresses to configure");
            // The built-in IPAMs skip these already; a delegate or a prevResult does not know them.
            if (addresses.Ips.FirstOrDefault(ip => nodeAddresses.Holds(ip.Address.Address)) is { } held)
                throw nodeAddresses.Refusal(held.Address.Address, ipam is null ? "prevResult.ips" : "ipam");
            record = record with { Addresses = addresses.Ips.Select(ip => ip.Address.ToString()).ToList() };
            store.Save(record);
            Reach("addresses-reserved");

            PodHostRoutes? podHostRoutes = null;
            if (config.UsesHostSide)
            {
                var hostAddresses = HostSide.Addresses(config, host, addresses);
                var hostLink = HostSide.Ensure(config, master, host, store, hostAddresses);
                record = record with { HostInterface = hostLink.Name };
                store.Save(record);
                HostSide.AddPodRoutes(host, hostLink, addresses.Ips.Select(ip => ip.Address));
                if (config.Egress == EgressMode.Host)
                    HostSide.EnableForwarding(addresses.Ips.Select(ip => ip.Address.Family));
                podHostRoutes = new PodHostRoutes(hostAddresses, master.MacAddress);
            }
            Reach("host-side-ready");
            if (config.IpMasq)
                record = ApplyMasquerade(config, store, record, addresses, master.Name);
            Reach("nat-applied");

            var link = PodInterface.Create(config, master, host, pod, podNs, record, addresses, podHostRoutes, Reach);
            Reach("link-configured");
            return new CniResult
            {
                CniVersion = config.Network.CniVersion,
                Interfaces = [new CniInterface(request.IfName) { Mac = link.MacAddress.ToColonString(), Sandbox = request.NetnsPath }],
                Ips = addresses.Ips.Select(ip => ip with { Interface = 0 }).ToList(),
                Routes = addresses.Routes,
                Dns = config.Dns.IsEmpty ? addresses.Dns : config.Dns,
            };
        }
        catch (Exception addFailure)
        {
            try
            {
                Teardown(config, request, record, host, store, ipam);
            }
            catch (Exception rollbackFailure)
            {
                throw new CniException(ErrorCode(addFailure), $"{addFailure.Message}; rolling back also failed: {rollbackFailure.Message}", null, addFailure);
            }
            throw;
        }
    }

    public void Delete(CniRequest request)
    {
        var config = PluginConfig.Parse(request);
        var store = new StateStore(config.StateDir);
        using var nodeLock = store.Lock();
        var record = store.TryLoadAttachment(config.Network.Name, request.ContainerId, request.IfName);
        using var host = OpenHostClient(config, request.NetnsPath);
        var ipam = config.Ipam is { } ipamConfig ? IpamFactory.Create(ipamConfig, request) : null;
        Teardown(config, request, record, host, store, ipam);
    }

    public void Check(CniRequest request)
    {
        var config = PluginConfig.Parse(request);
        var previous = config.Network.PrevResult
            ?? throw new CniException(CniErrorCode.InvalidNetworkConfig, "prevResult: CHECK needs the result of ADD");
        using var podNs = OpenPodNamespace(request.NetnsPath);
        var store = new StateStore(config.StateDir);
        var record = store.TryLoadAttachment(config.Network.Name, request.ContainerId, request.IfName)
            ?? throw new CniException(CniErrorCode.UnknownContainer, $"container {request.ContainerId} has no {request.IfName} on network {config.Network.Name}");
        if (config.Ipam is { } ipamConfig)
            IpamFactory.Create(ipamConfig, request).Check(request);
        using var host = config.LinkInContainer ? RouteClient.OpenIn(podNs) : RouteClient.Open();
        using var pod = RouteClient.OpenIn(podNs);
        Checks.Attachment(config, request, record, store.TryLoadMaster(record.Master), previous, host, pod);
        if (config.IpMasq)
        {
            var subnets = record.MasqueradedSubnets.Select(IpPrefix.Parse).ToList();
            if (!Masquerade.ForNetwork(record.NatBackend).IsApplied(config.Network.Name, record.Master, subnets))
                throw new CniException(CniErrorCode.NatFailed, $"ipMasq: the NAT rules of network {config.Network.Name} are missing");
        }
    }

    public void Status(CniRequest request)
    {
        var config = PluginConfig.Parse(request);
        if (!config.LinkInContainer)
        {
            using var host = RouteClient.Open();
            string name;
            try
            {
                name = Masters.ResolveName(config, host);
            }
            catch (CniException e)
            {
                throw new CniException(CniErrorCode.PluginNotAvailable, e.Message);
            }
            // A VLAN master the first ADD will create is ready when its parent is.
            var master = host.TryGetLink(name);
            if (master is null && Masters.ParseVlanName(name) is var (parent, _))
                master = host.TryGetLink(parent);
            if (master is null)
                throw new CniException(CniErrorCode.PluginNotAvailable, $"master \"{name}\" does not exist");
            if (!master.IsUp)
                throw new CniException(CniErrorCode.PluginNotAvailable, $"master \"{master.Name}\" is down");
            if (master.Kind == "vlan" && host.TryGetLink(master.ParentIndex) is { IsUp: false } vlanParent)
                throw new CniException(CniErrorCode.PluginNotAvailable, $"\"{vlanParent.Name}\", the parent of master \"{master.Name}\", is down");
        }
        if (config.Ipam is { } ipamConfig)
            IpamFactory.Create(ipamConfig, request).Status(request);
    }

    public void GarbageCollect(CniRequest request)
    {
        var config = PluginConfig.Parse(request);
        // Without the list every attachment would look stale: refuse rather than release everything.
        var validAttachments = config.Network.ValidAttachments
            ?? throw new CniException(CniErrorCode.InvalidNetworkConfig, $"{CniDispatcher.ValidAttachmentsKey}: GC needs the list of attachments to keep");
        var valid = validAttachments.Select(a => (a.ContainerId, a.IfName)).ToHashSet();
        var store = new StateStore(config.StateDir);
        var errors = new List<string>();
        using (store.Lock())
        using (var host = RouteClient.Open())
        {
            foreach (var record in store.ListAttachments(config.Network.Name))
            {
                if (valid.Contains((record.ContainerId, record.IfName)))
                    continue;
                try
                {
                    // The runtime has forgotten the pod: its namespace and link are gone or about to go.
                    var stale = request with { ContainerId = record.ContainerId, IfName = record.IfName, NetnsPath = record.NetnsPath };
                    Teardown(config, stale, record, host, store, ipam: null);
                }
                catch (Exception e)
                {
                    errors.Add($"{record.ContainerId}/{record.IfName}: {e.Message}");
                }
            }
            store.DeleteTemporaries(config.Network.Name);
        }
        if (config.Ipam is { } ipamConfig)
        {
            try
            {
                IpamFactory.Create(ipamConfig, request).GarbageCollect(request, validAttachments);
            }
            catch (Exception e)
            {
                errors.Add($"ipam: {e.Message}");
            }
        }
        if (errors.Count > 0)
            throw new CniException(CniErrorCode.IoFailure, $"GC could not release everything: {string.Join("; ", errors)}");
    }

    /// <summary>
    /// Undoes an attachment, each step idempotent, in reverse order of ADD: the address reservation always, the pod
    /// link, the pod's host routes, its record; then whatever the master's or the network's last pod leaves behind.
    /// </summary>
    static void Teardown(PluginConfig config, CniRequest request, AttachmentRecord? record, RouteClient host, StateStore store, IIpam? ipam)
    {
        var errors = new List<Exception>();
        void Step(Action step)
        {
            try
            {
                step();
            }
            catch (Exception e)
            {
                errors.Add(e);
            }
        }

        if (ipam is not null)
            Step(() => ipam.Release(request));
        else if (record is not null && config.Ipam is { } ipamConfig)
            Step(() => IpamFactory.Create(ipamConfig, request).Release(request));
        Step(() => PodInterface.Delete(request.NetnsPath.Length > 0 ? request.NetnsPath : record?.NetnsPath ?? "", record, request.IfName));
        if (record?.HostInterface is { } hostInterface)
            Step(() => HostSide.DeletePodRoutes(host, hostInterface, record.Addresses.Select(IpPrefix.Parse)));
        if (errors.Count > 0)
            throw Combine(errors);
        // A kill during a record's write leaves only its temporary, which no record names.
        store.DeleteTemporaries(config.Network.Name);
        if (record is null)
            return;
        store.Remove(record);

        if (record.MasqueradedSubnets.Count > 0)
        {
            var network = store.ListAttachments(record.Network);
            var subnets = network.SelectMany(r => r.MasqueradedSubnets).Distinct().Select(IpPrefix.Parse).ToList();
            var masquerade = Masquerade.ForNetwork(record.NatBackend);
            // Pods left with no subnets (their ADD died before NAT) need no rules: the chain goes with the last subnet.
            if (subnets.Count == 0)
                masquerade.Remove(record.Network, record.MasqueradedSubnets.Select(IpPrefix.Parse).ToList());
            else
                masquerade.Apply(record.Network, record.Master, subnets);
        }
        // Lazily: the first other pod on the master settles it, without reading every pod's record.
        if (!record.LinkInContainer && !store.EnumerateAttachments().Any(r => r.Master == record.Master && !r.LinkInContainer))
        {
            Masters.RemovePort(record.Master, host);
            if (store.TryLoadMaster(record.Master) is { } master)
            {
                HostSide.Release(host, store, master);
                if (master.CreatedVlan && host.TryGetLink(master.Name) is { Kind: "vlan" } vlan)
                    host.DeleteLink(vlan.Index);
            }
            store.RemoveMaster(record.Master);
        }
    }

    /// <summary>
    /// Puts the pod's subnets into the network's NAT rules, in the backend its other pods' rules are in (chosen by
    /// proof for the network's first), recorded before the rules change.
    /// </summary>
    static AttachmentRecord ApplyMasquerade(PluginConfig config, StateStore store, AttachmentRecord record, CniResult addresses, string master)
    {
        var others = store.ListAttachments(config.Network.Name)
            .Where(r => (r.ContainerId, r.IfName) != (record.ContainerId, record.IfName)).ToList();
        var masquerade = Masquerade.ForNetwork(others.Select(r => r.NatBackend).FirstOrDefault(b => b is not null));
        record = record with
        {
            MasqueradedSubnets = addresses.Ips.Select(ip => ip.Address.Network.ToString()).ToList(),
            NatBackend = masquerade.Backend,
        };
        store.Save(record);
        var subnets = others.Append(record).SelectMany(r => r.MasqueradedSubnets).Distinct().Select(IpPrefix.Parse).ToList();
        masquerade.Apply(config.Network.Name, master, subnets);
        return record;
    }

    static void ValidateForAdd(PluginConfig config)
    {
        if (config.Ipam is null && config.Network.PrevResult is not { Ips.Count: > 0 })
            throw PluginConfig.Invalid("ipam", "missing, and there is no prevResult with addresses to use instead");
    }

    /// <summary>Refuses a master this network cannot use, above all a mode or flag its ipvlan port does not run.</summary>
    static void CheckMaster(PluginConfig config, LinkInfo master, RouteClient host, StateStore store, AttachmentRecord adding)
    {
        if (master.Kind == "ipvlan")
            throw PluginConfig.Invalid("master", $"\"{master.Name}\" is an ipvlan link itself; the master must be a real (or VLAN) interface");
        if (config.Mtu > master.Mtu)
            throw PluginConfig.Invalid("mtu", $"{config.Mtu} is larger than the MTU {master.Mtu} of master \"{master.Name}\"");
        if (config.LinkInContainer)
        {
            Refuse(Masters.CurrentPortSetting(master, host, store, []));
            return;
        }
        // The port link answers in one round trip with what the kernel runs now, whoever changed it last.
        if (Masters.ReadPort(master, host) is { } live)
        {
            Refuse(live);
            return;
        }
        // No port link yet (the master's first pod of ours, or someone deleted it): ask our pods' slaves, then the
        // slaves other tools made in this namespace; only then may a port link with our setting be created.
        var others = store.EnumerateAttachments()
            .Where(a => a.Master == master.Name && !a.LinkInContainer && (a.Network, a.ContainerId, a.IfName) != (adding.Network, adding.ContainerId, adding.IfName));
        Refuse(Masters.CurrentPortSetting(master, host, store, others));
        Masters.CreatePort(master, host, config.Mode, config.Flag);

        void Refuse((IpvlanMode Mode, IpvlanFlag Flag, string Witness)? current)
        {
            if (current is { } setting && (setting.Mode != config.Mode || setting.Flag != config.Flag))
                throw Masters.ModeConflict(master.Name, setting, config.Mode, config.Flag);
        }
    }

    static CniResult PreviousAddresses(PluginConfig config)
    {
        var previous = config.Network.PrevResult!;
        return new CniResult { Ips = previous.Ips.ToList(), Routes = previous.Routes.ToList(), Dns = previous.Dns };
    }

    static RouteClient OpenHostClient(PluginConfig config, string netnsPath)
    {
        if (!config.LinkInContainer)
            return RouteClient.Open();
        NetNamespace ns;
        try
        {
            ns = OpenPodNamespace(netnsPath);
        }
        catch (CniException)
        {
            // The master went with the pod's namespace, and a link-in-container network has nothing of its own on the
            // node: the node's namespace serves for the rest of DEL (IPAM, records).
            return RouteClient.Open();
        }
        using (ns)
            return RouteClient.OpenIn(ns);
    }

    static NetNamespace OpenPodNamespace(string path)
    {
        try
        {
            return NetNamespace.Open(path);
        }
        catch (Exception e) when (e is NamespaceException or IOException or UnauthorizedAccessException)
        {
            throw new CniException(CniErrorCode.InvalidEnvironment, $"CNI_NETNS: \"{path}\" is not a network namespace: {e.Message}");
        }
    }

    /// <summary>A name no CNI_IFNAME will collide with, like the reference plugin's random veth names.</summary>
    // Guid.NewGuid reads the kernel's random source; RandomNumberGenerator would load libssl and libcrypto
    // (about 3 MB of RSS and many milliseconds per ADD) for 5 bytes. The first 10 hex digits of a v4 GUID are random.
    static string TemporaryName() => "ipvl" + Guid.NewGuid().ToString("N")[..10];

    static int ErrorCode(Exception e) => CniException.From(e).Code;

    static Exception Combine(List<Exception> errors) => errors.Count == 1
        ? errors[0]
        : new CniException(ErrorCode(errors[0]), string.Join("; ", errors.Select(e => e.Message)));
}

static class PhysicalAddressText
{
    /// <summary>"aa:bb:cc:dd:ee:ff", the form CNI results use.</summary>
    public static string ToColonString(this System.Net.NetworkInformation.PhysicalAddress address) =>
        string.Join(':', address.GetAddressBytes().Select(b => b.ToString("x2")));
}
