using System.Net;
using System.Net.Sockets;
using IpvlanCni.Cni;
using IpvlanCni.Interop;
using IpvlanCni.Ipam;
using IpvlanCni.Netlink;
using IpvlanCni.Network;

namespace IpvlanCni.Plugin;

/// <summary>
/// The ipvlan CNI plugin. Every ADD writes its attachment record before it changes anything and then takes its
/// steps in an order DEL can undo from that record alone; a failed ADD runs the same teardown as DEL.
/// Every call holds its attachment's lock throughout; host-side changes happen under one node-wide lock inside it
/// (ipvlan port mode, host-side slave, VLAN, NAT rules), and IPAM runs outside the node lock.
/// </summary>
public sealed class IpvlanPlugin : ICniPlugin
{
    public CniResult Add(CniRequest request)
    {
        var config = Parse(request);
        ValidateForAdd(config);
        // Everything the request names is opened (bounded, never blocking) before the node lock is taken.
        using var podNs = OpenPodNamespace(request.NetnsPath);
        using var store = StateStore.Open(config.StateDir);
        using var pod = RouteClient.OpenIn(podNs);
        using var host = config.LinkInContainer ? RouteClient.OpenIn(podNs) : RouteClient.Open();
        var podIdentity = Identity(podNs, pod);
        // Our host-side and port links live in the node's namespace under these names; no pod link may take one.
        if (StateStore.NodeNamespace.Matches(podIdentity) && IsHostLinkName(request.IfName, store, config))
            throw new CniException(CniErrorCode.InvalidEnvironment,
                $"CNI_IFNAME: \"{request.IfName}\" is a name the plugin keeps for its own links in the node's namespace, which CNI_NETNS names");
        using var attachmentLock = store.LockAttachment(config.Network.Name, request.ContainerId, request.IfName, config.Timeouts.Lock);
        IDisposable? nodeLock = store.Lock(config.Timeouts.Lock);
        try
        {
            return Add(request, config, store, podNs, pod, host, podIdentity, ref nodeLock);
        }
        finally
        {
            nodeLock?.Dispose();
        }
    }

    /// <summary>
    /// ADD under the attachment's lock, entered holding the node lock: the host-side steps run under it, IPAM between
    /// two holds of it (its answer is the request's to give or withhold; nothing another pod needs waits for it).
    /// </summary>
    static CniResult Add(CniRequest request, PluginConfig config, StateStore store, NetNamespace podNs, RouteClient pod, RouteClient host,
        NamespaceIdentity podIdentity, ref IDisposable? nodeLock)
    {
        if (store.TryLoadAttachment(config.Network.Name, request.ContainerId, request.IfName) is not null)
            throw new CniException(CniErrorCode.AlreadyExists,
                $"container {request.ContainerId} already has {request.IfName} on network {config.Network.Name}; DEL it first");
        if (pod.TryGetLink(request.IfName) is not null)
            throw new CniException(CniErrorCode.AlreadyExists, $"CNI_IFNAME: interface \"{request.IfName}\" already exists in {request.NetnsPath}");
        // Node-wide: another network's ADD (maybe waiting on its IPAM, its link not made yet) has the name there.
        if (store.ClaimOf(podIdentity, request.IfName) is not null)
            throw new CniException(CniErrorCode.AlreadyExists, $"CNI_IFNAME: another attachment on the node holds \"{request.IfName}\" in {request.NetnsPath}");

        var masterName = Masters.ResolveName(config, host);
        var record = new AttachmentRecord
        {
            Network = config.Network.Name,
            ContainerId = request.ContainerId,
            IfName = request.IfName,
            NetnsPath = request.NetnsPath,
            Netns = podIdentity,
            Master = masterName,
            TemporaryName = TemporaryName(),
            LinkInContainer = config.LinkInContainer,
        };
        // The addresses the node holds: its namespace's, and with linkInContainer also the master's namespace's.
        using var node = config.LinkInContainer ? RouteClient.Open() : null;
        var nodeAddresses = node is null ? NodeAddresses.Read(host) : NodeAddresses.Read(node, host);
        var ipam = config.Ipam is { } ipamConfig ? IpamFactory.Create(ipamConfig, request, config.Timeouts.Ipam, nodeAddresses) : null;
        // ipam.probe: off unless configured (then parsed here, before anything changes).
        var probe = config.Ipam is { } probeConfig ? WireProbeConfig.Parse(probeConfig, ipam) : null;
        // Before the record: a missing IPAM plugin would also fail the rollback's release and strand the record.
        if (ipam is DelegatingIpam delegating)
            delegating.FindPlugin(request.PluginPaths);
        void Reach(string step) => FaultPoints.Reach(step, request.Environment);
        store.Save(record);
        try
        {
            store.Claim(record);
            Reach("recorded");
            // Node-wide, before anything is created on the master: no network's last DEL removes it under this pod.
            if (!config.LinkInContainer)
                store.AddUser(masterName, record);
            var master = Masters.Ensure(masterName, host, store, mayCreateVlan: !config.LinkInContainer);
            CheckMaster(config, master, host, store, record);
            // Saved with the next write of the record; until then a DEL finds the master by name.
            record = record with { MasterIndex = master.Index };
            Reach("master-ready");

            // IPAM that runs a client on the pod's interface (DHCP; and any plugin we do not know, which may) is
            // asked once the slave exists in the pod's namespace under CNI_IFNAME and is up.
            var early = ipam is DelegatingIpam or DhcpAgentIpam
                ? PodInterface.CreateLink(config, master, host, pod, podNs, record, Reach, up: true)
                : null;
            // Without the node lock: the attachment's own lock keeps its DEL and GC out meanwhile, and the master
            // (this pod is its user), the claim and the record stay as they are for everyone else.
            nodeLock!.Dispose();
            nodeLock = null;
            var addresses = ipam is null ? PreviousAddresses(config) : ipam.Allocate(request);
            if (addresses.Ips.Count == 0)
                throw new CniException(CniErrorCode.InvalidNetworkConfig, "ipam: no IP addresses to configure");
            // The built-in IPAMs skip these already; a delegate or a prevResult does not know them.
            if (addresses.Ips.FirstOrDefault(ip => nodeAddresses.Holds(ip.Address.Address)) is { } held)
                throw nodeAddresses.Refusal(held.Address.Address, ipam is null ? "prevResult.ips" : "ipam");
            if (probe is not null)
                addresses = WireProbe.Claim(probe, ipam!, request, addresses, master, config.LinkInContainer ? podNs : null);
            nodeLock = store.Lock(config.Timeouts.Lock);
            record = record with { Addresses = addresses.Ips.Select(ip => ip.Address.ToString()).ToList() };
            store.Save(record);
            Reach("addresses-reserved");

            PodHostRoutes? podHostRoutes = null;
            if (config.UsesHostSide)
            {
                var hostAddresses = HostSide.Addresses(config, host, addresses);
                var hostLink = HostSide.Ensure(config, master, host, store, hostAddresses);
                record = record with { HostInterface = InterfaceName.Parse(hostLink.Name, "hostAccess.interface") };
                store.Save(record);
                HostSide.AddPodRoutes(host, hostLink, addresses.Ips.Select(ip => ip.Address));
                if (config.Egress == EgressMode.Host)
                    HostSide.EnableForwarding(addresses.Ips.Select(ip => ip.Address.Family));
                podHostRoutes = new PodHostRoutes(hostAddresses, master.MacAddress);
            }
            Reach("host-side-ready");
            if (config.IpMasq)
                record = ApplyMasquerade(config, store, record, addresses, masterName);
            Reach("nat-applied");

            var link = early ?? PodInterface.Create(config, master, host, pod, podNs, record, addresses, podHostRoutes, Reach);
            if (early is not null)
                PodInterface.Configure(config, pod, podNs, early, addresses, podHostRoutes, bringUp: false);
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
                nodeLock?.Dispose();
                nodeLock = null;
                var released = ReleaseAddresses(config, request, record, ipam);
                nodeLock = store.Lock(config.Timeouts.Lock);
                using var hostClient = new HostClient(host);
                Teardown(config, request, record, hostClient, store, released, podNs, pod);
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
        var config = Parse(request);
        using var store = StateStore.Open(config.StateDir);
        // Under the attachment's lock no other call changes its record: an ADD still waiting on IPAM finishes first.
        using var attachmentLock = store.LockAttachment(config.Network.Name, request.ContainerId, request.IfName, config.Timeouts.Lock);
        var record = store.TryLoadAttachment(config.Network.Name, request.ContainerId, request.IfName);
        // Opened before the node lock: a namespace path is the request's, and opening it must not stall the node. Its
        // socket serves the whole DEL (and tells the namespace's cookie); the master's namespace is asked only if needed.
        using var podNs = TryOpenNamespace(request.NetnsPath.Length > 0 ? request.NetnsPath : record?.NetnsPath);
        using var pod = podNs is null ? null : RouteClient.OpenIn(podNs);
        using var host = new HostClient(config.LinkInContainer ? pod : null);
        var ipam = config.Ipam is { } ipamConfig ? IpamFactory.Create(ipamConfig, request, config.Timeouts.Ipam) : null;
        var released = ReleaseAddresses(config, request, record, ipam);
        using var nodeLock = store.Lock(config.Timeouts.Lock);
        Teardown(config, request, record, host, store, released, podNs, pod);
    }

    public void Check(CniRequest request)
    {
        var config = Parse(request);
        var previous = config.Network.PrevResult
            ?? throw new CniException(CniErrorCode.InvalidNetworkConfig, "prevResult: CHECK needs the result of ADD");
        using var podNs = OpenPodNamespace(request.NetnsPath);
        using var store = StateStore.Open(config.StateDir);
        var record = store.TryLoadAttachment(config.Network.Name, request.ContainerId, request.IfName)
            ?? throw new CniException(CniErrorCode.UnknownContainer, $"container {request.ContainerId} has no {request.IfName} on network {config.Network.Name}");
        if (config.Ipam is { } ipamConfig)
            IpamFactory.Create(ipamConfig, request, config.Timeouts.Ipam).Check(request);
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
        var config = Parse(request);
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
            IpamFactory.Create(ipamConfig, request, config.Timeouts.Ipam).Status(request);
    }

    public void GarbageCollect(CniRequest request)
    {
        var config = Parse(request);
        // Without the list every attachment would look stale: refuse rather than release everything.
        var validAttachments = config.Network.ValidAttachments
            ?? throw new CniException(CniErrorCode.InvalidNetworkConfig, $"{CniDispatcher.ValidAttachmentsKey}: GC needs the list of attachments to keep");
        var valid = validAttachments.Select(a => (a.ContainerId, a.IfName)).ToHashSet();
        using var store = StateStore.Open(config.StateDir);
        var errors = new List<string>();
        // The stale pods' namespaces are opened before the lock (each bounded): none can stall the node under it.
        var stale = new List<(AttachmentRecord Record, NetNamespace? Namespace)>();
        foreach (var record in store.ListAttachments(config.Network.Name))
            if (!valid.Contains((record.ContainerId.Value, record.IfName.Value)))
                stale.Add((record, TryOpenNamespace(record.NetnsPath)));
        try
        {
            using var host = new HostClient();
            foreach (var (record, ns) in stale)
            {
                try
                {
                    // Each stale attachment as its DEL would be: its own lock, IPAM outside the node lock.
                    using var attachmentLock = store.LockAttachment(record.Network, record.ContainerId, record.IfName, config.Timeouts.Lock);
                    // Read again under its lock: a DEL may have removed it meanwhile.
                    if (store.TryLoadAttachment(record.Network, record.ContainerId, record.IfName) is not { } current)
                        continue;
                    // The runtime has forgotten the pod: its namespace and link are gone or about to go.
                    var staleRequest = request with { ContainerId = current.ContainerId, IfName = current.IfName, NetnsPath = current.NetnsPath };
                    var released = ReleaseAddresses(config, staleRequest, current, ipam: null);
                    using var nodeLock = store.Lock(config.Timeouts.Lock);
                    Teardown(config, staleRequest, current, host, store, released, ns, pod: null);
                }
                catch (Exception e)
                {
                    errors.Add($"{record.ContainerId}/{record.IfName}: {Describe(e)}");
                }
            }
            store.DeleteAbandonedAttachmentLocks();
            using (store.Lock(config.Timeouts.Lock))
                store.DeleteTemporaries();
        }
        finally
        {
            foreach (var (_, ns) in stale)
                ns?.Dispose();
        }
        if (config.Ipam is { } ipamConfig)
        {
            try
            {
                IpamFactory.Create(ipamConfig, request, config.Timeouts.Ipam).GarbageCollect(request, validAttachments);
            }
            catch (Exception e)
            {
                errors.Add($"ipam: {Describe(e)}");
            }
        }
        if (errors.Count > 0)
            throw new CniException(CniErrorCode.IoFailure, $"GC could not release everything: {string.Join("; ", errors)}");
    }

    /// <summary>
    /// Undoes an attachment in reverse order of ADD, each step idempotent and removing only what is still ours: the
    /// address reservation, the pod link (an ipvlan slave of the master, in the recorded namespace), its claim, the
    /// pod's host routes, its NAT subnets, what the master's last user (of any network) leaves behind, its user mark,
    /// and last the record: a kill at any point leaves the record, from which the next DEL or GC finishes the job.
    /// </summary>
    static void Teardown(PluginConfig config, CniRequest request, AttachmentRecord? record, HostClient host, StateStore store,
        Exception? releaseFailure, NetNamespace? podNs, RouteClient? pod)
    {
        var errors = new List<Exception>();
        // Not released: the record must stay for the next DEL, after the link steps below have been tried.
        if (releaseFailure is not null)
            errors.Add(releaseFailure);
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

        if (podNs is not null)
            Step(() => DeletePodLink(config, request, record, host, store, podNs, pod));
        if (record?.HostInterface is { } hostInterface)
            Step(() => HostSide.DeletePodRoutes(host.Client, hostInterface, record.Addresses.Select(IpPrefix.Parse)));
        if (errors.Count > 0)
            throw Combine(errors);
        // A kill during a record's write leaves only its temporary, in a folder no record is read from.
        store.DeleteTemporaries();
        if (record is null)
            return;
        store.Unclaim(record);

        if (record.MasqueradedSubnets.Count > 0)
        {
            var others = store.EnumerateAttachments(record.Network).Where(r => !SameAttachment(r, record));
            var subnets = others.SelectMany(r => r.MasqueradedSubnets).Distinct().Select(IpPrefix.Parse).ToList();
            var masquerade = Masquerade.ForNetwork(record.NatBackend);
            // Pods left with no subnets (their ADD died before NAT) need no rules: the chain goes with the last subnet.
            if (subnets.Count == 0)
                masquerade.Remove(record.Network, record.MasqueradedSubnets.Select(IpPrefix.Parse).ToList());
            else
                masquerade.Apply(record.Network, record.Master, subnets);
        }
        if (!record.LinkInContainer)
        {
            // Node-wide: a pod of any network, under any stateDir, keeps the master's VLAN and host-side slave.
            if (!store.HasOtherUsers(record.Master, record))
            {
                Masters.RemovePort(record.Master, host.Client);
                if (store.TryLoadMaster(record.Master) is { } master)
                {
                    var masterLink = host.Client.TryGetLink(master.Name);
                    HostSide.Release(host.Client, master, masterLink);
                    if (master.CreatedVlan && masterLink is { } vlan && Masters.IsVlanWeNamed(host.Client, vlan, master.Name))
                        host.Client.DeleteLink(vlan.Index);
                }
                store.RemoveMaster(record.Master);
            }
            store.RemoveUser(record.Master, record);
        }
        store.Remove(record);
    }

    /// <summary>
    /// The first step of every teardown, taken under the attachment's lock without the node lock: the addresses go
    /// back to IPAM (with a record, or with IPAM configured: a DEL without a record still releases by its key). The
    /// failure, if any, is handed to <see cref="Teardown"/>, which keeps the record for the next DEL.
    /// </summary>
    static Exception? ReleaseAddresses(PluginConfig config, CniRequest request, AttachmentRecord? record, IIpam? ipam)
    {
        try
        {
            if (ipam is not null)
                ipam.Release(request);
            else if (record is not null && config.Ipam is { } ipamConfig)
                IpamFactory.Create(ipamConfig, request, config.Timeouts.Ipam).Release(request);
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }

    /// <summary>
    /// The pod link, when it is this attachment's: in the namespace the record names (by cookie: an nsfs inode is
    /// reused), under a name no other attachment on the node claims (any network, any stateDir), and never one of our
    /// own host-side or port links when CNI_NETNS names the node's namespace (only a master's last pod removes those).
    /// </summary>
    static void DeletePodLink(PluginConfig config, CniRequest request, AttachmentRecord? record, HostClient host, StateStore store,
        NetNamespace podNs, RouteClient? pod)
    {
        using var opened = pod is null ? RouteClient.OpenIn(podNs) : null;
        var client = pod ?? opened!;
        var live = Identity(podNs, client);
        // The path now names another namespace than the pod's (its namespace went, the path was reused).
        if (record?.Netns is { } recorded && !recorded.Matches(live))
            return;
        bool mayDeleteName = store.ClaimOf(live, request.IfName) is not { } claimant || claimant == record?.TemporaryName.Value;
        // Records written before claims existed: without a record, one of this network's naming the link keeps it.
        if (mayDeleteName && record is null)
            mayDeleteName = !store.EnumerateAttachments(config.Network.Name)
                .Any(r => r.IfName == request.IfName && r.Netns is { } ns && ns.Matches(live));
        // In the node's own namespace every link is the node's unless our record says otherwise (and never our own).
        if (mayDeleteName && StateStore.NodeNamespace.Matches(live) && (record is null || IsHostLinkName(request.IfName, store, config)))
            mayDeleteName = false;
        PodInterface.Delete(client, record, request.IfName, mayDeleteName, () => MasterIndex(config, record, host));
    }

    /// <summary>Names of our links in the node's namespace: port links (ipvlp&lt;ifindex&gt;), host-side slaves (ipvlh&lt;ifindex&gt;, or configured).</summary>
    static bool IsHostLinkName(InterfaceName name, StateStore store, PluginConfig config)
    {
        string value = name.Value;
        if (value.Length > 5 && (value.StartsWith("ipvlp", StringComparison.Ordinal) || value.StartsWith("ipvlh", StringComparison.Ordinal))
            && value.AsSpan(5).IndexOfAnyExceptInRange('0', '9') < 0)
            return true;
        return config.HostAccess?.Interface == name || store.HostInterfaces().Contains(name);
    }

    static NamespaceIdentity Identity(NetNamespace ns, RouteClient client) => new(ns.Device, ns.Inode) { Cookie = client.NamespaceCookie };

    static bool SameAttachment(AttachmentRecord a, AttachmentRecord b) =>
        a.Network == b.Network && a.ContainerId == b.ContainerId && a.IfName == b.IfName;

    /// <summary>
    /// The ifindex of the master a pod link of ours hangs off: recorded at ADD, or looked up by the recorded (DEL
    /// without a record: the configured) name. Null when it cannot be known: then no link is ours to delete.
    /// </summary>
    static int? MasterIndex(PluginConfig config, AttachmentRecord? record, HostClient host)
    {
        if (record?.MasterIndex is { } recorded)
            return recorded;
        try
        {
            var name = record?.Master ?? Masters.ResolveName(config, host.Client);
            return host.Client.TryGetLink(name)?.Index;
        }
        catch (Exception e) when (e is CniException or NetlinkException)
        {
            return null;
        }
    }

    /// <summary>
    /// The client for the master's namespace, opened on first use: a DEL of a pod whose master keeps other pods asks
    /// only the pod's namespace. With linkInContainer it is the pod's (the master lives there); with that namespace
    /// gone, the master went with it, and the node's namespace serves for the rest.
    /// </summary>
    sealed class HostClient(RouteClient? given = null) : IDisposable
    {
        RouteClient? _opened;

        public RouteClient Client => given ?? (_opened ??= RouteClient.Open());

        public void Dispose() => _opened?.Dispose();
    }

    /// <summary>
    /// Puts the pod's subnets into the network's NAT rules, in the backend its other pods' rules are in (chosen by
    /// proof for the network's first), recorded before the rules change.
    /// </summary>
    static AttachmentRecord ApplyMasquerade(PluginConfig config, StateStore store, AttachmentRecord record, CniResult addresses, InterfaceName master)
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

    static PluginConfig Parse(CniRequest request)
    {
        var config = PluginConfig.Parse(request);
        Tools.Timeout = config.Timeouts.Nat;
        return config;
    }

    static void ValidateForAdd(PluginConfig config)
    {
        if (config.Ipam is null && config.Network.PrevResult is not { Ips.Count: > 0 })
            throw PluginConfig.Invalid("ipam", "missing, and there is no prevResult with addresses to use instead");
        // ipvlan hands a slave broadcasts only in l2; in l3 and l3s a DHCP offer can never reach the pod.
        if (config.IpamType == DhcpAgentIpam.TypeName && config.Mode != IpvlanMode.L2)
            throw PluginConfig.Invalid("mode", $"\"{Masters.Describe(config.Mode)}\" cannot use ipam \"{DhcpAgentIpam.TypeName}\": an l3 or l3s slave receives no broadcasts, so no DHCP offer reaches it; use mode \"l2\"");
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

    /// <summary>DEL and GC: the namespace if it is still there and a network namespace, else null (its links went with it).</summary>
    static NetNamespace? TryOpenNamespace(string? path)
    {
        if (string.IsNullOrEmpty(path))
            return null;
        try
        {
            return NetNamespace.Open(path);
        }
        catch (NamespaceException)
        {
            return null;
        }
    }

    static NetNamespace OpenPodNamespace(string path)
    {
        try
        {
            return NetNamespace.Open(path);
        }
        catch (NamespaceException e)
        {
            throw new CniException(CniErrorCode.InvalidEnvironment, $"CNI_NETNS: {e.Message}");
        }
    }

    /// <summary>A name no CNI_IFNAME will collide with, like the reference plugin's random veth names.</summary>
    // Guid.NewGuid reads the kernel's random source; RandomNumberGenerator would load libssl and libcrypto
    // (about 3 MB of RSS and many milliseconds per ADD) for 5 bytes. The first 10 hex digits of a v4 GUID are random.
    static InterfaceName TemporaryName() => InterfaceName.Parse("ipvl" + Guid.NewGuid().ToString("N")[..10], "temporary name");

    static int ErrorCode(Exception e) => CniException.From(e).Code;

    /// <summary>A message in words: ours, or the failed call and errno; never a bare .NET resource key.</summary>
    static string Describe(Exception e) => e is CniException or SystemCallException or NetlinkException or NamespaceException or UnsafePathException
        ? e.Message
        : $"{e.GetType().Name}: {e.Message}";

    static Exception Combine(List<Exception> errors) => errors.Count == 1
        ? errors[0]
        : new CniException(ErrorCode(errors[0]), string.Join("; ", errors.Select(Describe)));
}

static class PhysicalAddressText
{
    /// <summary>"aa:bb:cc:dd:ee:ff", the form CNI results use.</summary>
    public static string ToColonString(this System.Net.NetworkInformation.PhysicalAddress address) =>
        string.Join(':', address.GetAddressBytes().Select(b => b.ToString("x2")));
}
