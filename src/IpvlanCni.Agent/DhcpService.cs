using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using IpvlanCni.Cni;
using IpvlanCni.Dhcp;
using IpvlanCni.Netlink;
using IpvlanCni.Network;

namespace IpvlanCni.Agent;

/// <summary>
/// DHCP leases for pods (IPAM type ipvlan-cni-dhcp). "add" acquires a lease on the pod's interface (or returns the
/// one it holds), "del" releases it from the leased address and forgets it, "check" says whether it still holds.
/// A maintenance thread renews at T1, rebinds at T2 and marks a lease lost at expiry or on a NAK; every change is
/// on disk before it is answered, so a restarted agent resumes where the last one stopped.
/// </summary>
public sealed class DhcpService : IAgentService
{
    /// <summary>How long a renewal waits for its ACK before the client's retry timer takes over.</summary>
    static readonly TimeSpan RenewalWait = TimeSpan.FromSeconds(3);
    const int MaintenanceParallelism = 4;

    readonly LeaseStore _store;
    readonly AgentLog _log;
    readonly TimeProvider _clock;
    readonly int _maxLeases;
    readonly Lock _gate = new();
    readonly Dictionary<string, Session> _sessions = [];
    readonly CancellationTokenSource _stop = new();
    Thread? _maintenance;

    sealed class Session(ClientIdentity identity, string netnsPath, DhcpClient client)
    {
        public ClientIdentity Identity { get; } = identity;
        public string NetnsPath { get; set; } = netnsPath;
        public DhcpClient Client { get; set; } = client;
        /// <summary>One exchange at a time per lease: ADD, DEL, CHECK and renewals of one pod serialise here.</summary>
        public Lock Gate { get; } = new();
    }

    public DhcpService(LeaseStore store, AgentLog log, TimeProvider clock, int maxLeases)
    {
        _store = store;
        _log = log;
        _clock = clock;
        _maxLeases = maxLeases;
    }

    public string Name => "dhcp";

    public string Describe()
    {
        lock (_gate)
            return $"{_sessions.Count} leases in {_store.Directory}";
    }

    public void Start()
    {
        foreach (var stored in _store.LoadAll(problem => _log.Write($"dhcp skipped lease file {problem}")))
        {
            var client = new DhcpClient(stored.Identity, stored.HardwareAddress, NewTransactionId);
            client.Resume(stored.Lease, stored.LostReason);
            lock (_gate)
                _sessions[stored.Identity.Key] = new Session(stored.Identity, stored.NetnsPath, client);
            _log.Write($"dhcp resumed {stored.Identity} {stored.Lease.Address} state {client.State} renew at {stored.Lease.RenewAt:u}");
        }
        _maintenance = new Thread(Maintain) { IsBackground = true, Name = "dhcp-maintenance" };
        _maintenance.Start();
    }

    public Action<Utf8JsonWriter>? Handle(AgentRequest request, DateTimeOffset deadline, CancellationToken stopping) => request.Op switch
    {
        "add" => Add(request.Args, deadline),
        "del" => Del(request.Args),
        "check" => Check(request.Args),
        "gc" => GarbageCollect(request.Args),
        _ => throw new CniException(CniErrorCode.InvalidNetworkConfig, $"dhcp: unknown op \"{request.Op}\""),
    };

    /// <summary>(network, containerId, ifName) as the CNI spec allows them: nothing else names a lease.</summary>
    internal static ClientIdentity ParseIdentity(CniConfigReader args)
    {
        string network = args.GetRequiredString("network");
        string containerId = args.GetRequiredString("containerId");
        string ifName = args.GetRequiredString("ifName");
        if (!CniNames.IsValidIdentifier(network, out string problem))
            throw new CniException(CniErrorCode.InvalidNetworkConfig, $"network: \"{network}\" {problem}");
        if (!CniNames.IsValidIdentifier(containerId, out problem))
            throw new CniException(CniErrorCode.InvalidEnvironment, $"containerId: \"{containerId}\" {problem}");
        if (!CniNames.IsValidInterfaceName(ifName, out problem))
            throw new CniException(CniErrorCode.InvalidEnvironment, $"ifName: \"{ifName}\" {problem}");
        return new ClientIdentity(network, containerId, ifName);
    }

    static string ParseNetns(CniConfigReader args)
    {
        string netns = args.GetRequiredString("netns");
        if (!Path.IsPathFullyQualified(netns) || netns.Contains('\0'))
            throw new CniException(CniErrorCode.InvalidEnvironment, $"netns: \"{netns}\" is not an absolute path");
        return netns;
    }

    Action<Utf8JsonWriter> Add(CniConfigReader args, DateTimeOffset deadline)
    {
        var identity = ParseIdentity(args);
        string netns = ParseNetns(args);
        Session session;
        lock (_gate)
        {
            if (!_sessions.TryGetValue(identity.Key, out session!))
            {
                if (_sessions.Count >= _maxLeases)
                    throw new CniException(CniErrorCode.TryAgainLater, $"the agent already holds {_maxLeases} leases (its --max-leases)");
                session = new Session(identity, netns, new DhcpClient(identity, [], NewTransactionId));
                _sessions[identity.Key] = session;
            }
        }
        lock (session.Gate)
        {
            // A repeated ADD (the runtime retried, or the agent restarted in between) gets the lease it already has.
            if (session.Client.State is DhcpState.Bound or DhcpState.Renewing or DhcpState.Rebinding && session.NetnsPath == netns)
            {
                _log.Write($"dhcp add {identity} returns held lease {session.Client.Lease!.Address}");
                return Result(session.Client.Lease!);
            }
            try
            {
                var lease = Acquire(session, netns, deadline);
                return Result(lease);
            }
            catch
            {
                Forget(session);
                throw;
            }
        }
    }

    DhcpLease Acquire(Session session, string netns, DateTimeOffset deadline)
    {
        var identity = session.Identity;
        var started = _clock.GetUtcNow();
        using var ns = OpenNamespace(netns);
        byte[] mac;
        using (var pod = RouteClient.OpenIn(ns))
        {
            var link = pod.TryGetLink(identity.IfName)
                ?? throw new CniException(CniErrorCode.InvalidEnvironment, $"ifName: no interface \"{identity.IfName}\" in {netns} (the plugin creates it before asking for a lease)");
            if (!link.IsUp)
                throw new CniException(CniErrorCode.InvalidEnvironment, $"ifName: \"{identity.IfName}\" in {netns} is down");
            mac = link.MacAddress.GetAddressBytes();
        }
        var client = new DhcpClient(identity, mac, NewTransactionId);
        using (var transport = UdpDhcpTransport.Open(ns, identity.IfName))
            DhcpExchange.Run(client, transport, _clock, client.Start(_clock.GetUtcNow()), deadline);
        if (client.State != DhcpState.Bound)
            throw new CniException(CniErrorCode.TryAgainLater,
                $"dhcp: no lease for {identity.IfName} in {netns} within {(_clock.GetUtcNow() - started).TotalSeconds:0.#} s (state {client.State}): is a DHCP server on the master's network, and does it answer broadcasts?");
        var lease = client.Lease!;
        session.Client = client;
        session.NetnsPath = netns;
        _store.Save(new StoredLease(identity, netns, mac, lease, null));
        _log.Write($"dhcp bound {identity} {lease.Address} from {lease.ServerId} client-id {Convert.ToHexStringLower(identity.ClientId)} in {(_clock.GetUtcNow() - started).TotalMilliseconds:0} ms; renew at {lease.RenewAt:u}, expires {lease.ExpiresAt:u}");
        return lease;
    }

    Action<Utf8JsonWriter>? Del(CniConfigReader args)
    {
        var identity = ParseIdentity(args);
        Session? session;
        lock (_gate)
            _sessions.TryGetValue(identity.Key, out session);
        if (session is null)
        {
            _store.Remove(identity); // idempotent: nothing held, nothing to do
            return null;
        }
        lock (session.Gate)
        {
            var lease = session.Client.Lease;
            if (session.Client.Release() is { } release && lease is not null)
            {
                try
                {
                    SendRelease(session, lease, release);
                    _log.Write($"dhcp released {identity} {lease.Address} to {lease.ServerId}");
                }
                catch (Exception e) when (e is SocketException or NamespaceException or NetlinkException or IOException or CniException)
                {
                    // DEL must succeed when the pod is gone: the server takes the address back at expiry.
                    _log.Write($"dhcp could not release {identity} {lease.Address}: {e.Message}; forgetting it (the server reclaims it at {lease.ExpiresAt:u})");
                }
            }
            Forget(session);
        }
        return null;
    }

    /// <summary>
    /// Unicast from the leased address, as the server requires. The plugin's DEL asks before it removes the link,
    /// but a failed ADD may roll back before the address was configured: then it is added for the send and removed.
    /// </summary>
    void SendRelease(Session session, DhcpLease lease, DhcpSend release)
    {
        using var ns = OpenNamespace(session.NetnsPath);
        using var pod = RouteClient.OpenIn(ns);
        var link = pod.TryGetLink(session.Identity.IfName)
            ?? throw new CniException(CniErrorCode.InvalidEnvironment, $"no interface {session.Identity.IfName} left in {session.NetnsPath}");
        bool added = false;
        if (!pod.ListAddresses(AddressFamily.InterNetwork, link.Index).Any(a => a.Prefix.Address.Equals(lease.Address.Address)))
        {
            pod.AddAddress(new AddressInfo(link.Index, lease.Address));
            added = true;
        }
        try
        {
            using var transport = UdpDhcpTransport.Open(ns, session.Identity.IfName);
            transport.Send(release);
        }
        finally
        {
            if (added)
                pod.DeleteAddress(new AddressInfo(link.Index, lease.Address));
        }
    }

    Action<Utf8JsonWriter>? Check(CniConfigReader args)
    {
        var identity = ParseIdentity(args);
        var expected = args.GetAddress("address");
        Session? session;
        lock (_gate)
            _sessions.TryGetValue(identity.Key, out session);
        if (session is null)
            throw new CniException(CniErrorCode.CheckFailed, $"dhcp: the agent holds no lease for {identity}");
        lock (session.Gate)
        {
            var client = session.Client;
            if (client.State == DhcpState.Lost)
                throw new CniException(CniErrorCode.CheckFailed, $"dhcp: the lease of {identity} is lost: {client.LostReason}");
            if (client.State is not (DhcpState.Bound or DhcpState.Renewing or DhcpState.Rebinding) || client.Lease is null)
                throw new CniException(CniErrorCode.CheckFailed, $"dhcp: {identity} holds no lease (state {client.State})");
            if (expected is not null && !expected.Equals(client.Lease.Address.Address))
                throw new CniException(CniErrorCode.CheckFailed, $"dhcp: {identity} holds {client.Lease.Address.Address}, not {expected}");
            return Result(client.Lease);
        }
    }

    /// <summary>Releases every lease of the network that the runtime's list of valid attachments does not name.</summary>
    Action<Utf8JsonWriter>? GarbageCollect(CniConfigReader args)
    {
        string network = args.GetRequiredString("network");
        var valid = args.GetArray("valid").Select(a => (a.GetRequiredString("containerId"), a.GetRequiredString("ifName"))).ToHashSet();
        List<Session> stale;
        lock (_gate)
            stale = _sessions.Values.Where(s => s.Identity.Network == network && !valid.Contains((s.Identity.ContainerId, s.Identity.IfName))).ToList();
        foreach (var session in stale)
        {
            using var doc = JsonDocument.Parse(AgentProtocol.Request("dhcp", "del", w =>
            {
                w.WriteString("network", session.Identity.Network);
                w.WriteString("containerId", session.Identity.ContainerId);
                w.WriteString("ifName", session.Identity.IfName);
            }));
            _log.Write($"dhcp gc: {session.Identity} is not a valid attachment");
            Del(new CniConfigReader(doc.RootElement.GetProperty("args").Clone(), "args"));
        }
        return null;
    }

    void Forget(Session session)
    {
        lock (_gate)
            if (_sessions.TryGetValue(session.Identity.Key, out var current) && ReferenceEquals(current, session))
                _sessions.Remove(session.Identity.Key);
        _store.Remove(session.Identity);
    }

    /// <summary>Wakes at the earliest timer (at least every second), and runs the due ones a few at a time.</summary>
    void Maintain()
    {
        while (!_stop.IsCancellationRequested)
        {
            var now = _clock.GetUtcNow();
            List<Session> due;
            lock (_gate)
                due = _sessions.Values.Where(s => s.Client.WakeAt <= now).ToList();
            if (due.Count > 0)
                Parallel.ForEach(due, new ParallelOptions { MaxDegreeOfParallelism = MaintenanceParallelism }, Tick);
            DateTimeOffset next;
            lock (_gate)
                next = _sessions.Values.Select(s => s.Client.WakeAt).DefaultIfEmpty(DateTimeOffset.MaxValue).Min();
            var wait = next - _clock.GetUtcNow();
            _stop.Token.WaitHandle.WaitOne(wait < TimeSpan.Zero ? TimeSpan.Zero : wait > TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : wait);
        }
    }

    void Tick(Session session)
    {
        if (!session.Gate.TryEnter())
            return; // an ADD, DEL or CHECK holds it; the next round comes back
        try
        {
            var client = session.Client;
            var before = client.Lease;
            var now = _clock.GetUtcNow();
            var send = client.OnTimer(now);
            if (send is not null)
            {
                try
                {
                    using var ns = OpenNamespace(session.NetnsPath);
                    using var transport = UdpDhcpTransport.Open(ns, session.Identity.IfName);
                    var until = now + RenewalWait < client.WakeAt ? now + RenewalWait : client.WakeAt;
                    DhcpExchange.Run(client, transport, _clock, send, until);
                }
                catch (CniException e) when (e.Code == CniErrorCode.InvalidEnvironment)
                {
                    // The namespace is gone without a DEL: so is the pod, and the server reclaims the address at expiry.
                    _log.Write($"dhcp forgets {session.Identity} {before?.Address}: {e.Message}");
                    Forget(session);
                    return;
                }
                catch (Exception e) when (e is SocketException or NamespaceException)
                {
                    _log.Write($"dhcp renewal of {session.Identity} {before?.Address} could not be sent: {e.Message}; retrying at {client.WakeAt:u}");
                }
            }
            if (client.State == DhcpState.Lost)
            {
                _log.Write($"dhcp LEASE LOST {session.Identity}: {client.LostReason}");
                _store.Save(new StoredLease(session.Identity, session.NetnsPath, client.HardwareAddress, client.Lease!, client.LostReason));
            }
            else if (!ReferenceEquals(before, client.Lease) && client.Lease is { } renewed)
            {
                _store.Save(new StoredLease(session.Identity, session.NetnsPath, client.HardwareAddress, renewed, null));
                _log.Write($"dhcp renewed {session.Identity} {renewed.Address} from {renewed.ServerId}; renew at {renewed.RenewAt:u}, expires {renewed.ExpiresAt:u}");
            }
            else if (send is not null)
                _log.Write($"dhcp {client.State.ToString().ToLowerInvariant()} {session.Identity} {before?.Address}: no answer yet, next try at {client.WakeAt:u}");
        }
        catch (Exception e)
        {
            _log.Write($"dhcp maintenance of {session.Identity} failed: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            session.Gate.Exit();
        }
    }

    static NetNamespace OpenNamespace(string path)
    {
        try
        {
            return NetNamespace.Open(path);
        }
        catch (NamespaceException e)
        {
            throw new CniException(CniErrorCode.InvalidEnvironment, $"netns: {e.Message}");
        }
    }

    /// <summary>The lease as a CNI result: the address with its router as gateway, option 121's routes or a default route, DNS.</summary>
    static Action<Utf8JsonWriter> Result(DhcpLease lease)
    {
        var result = new CniResult
        {
            Ips = [new CniIpConfig(lease.Address) { Gateway = lease.Router }],
            // RFC 3442: with classless routes present, the client ignores the router option for routing.
            Routes = lease.ClasslessRoutes.Count > 0
                ? [.. lease.ClasslessRoutes.Select(r => new CniRoute(r.Destination) { Gateway = r.Router.Equals(IPAddress.Any) ? null : r.Router })]
                : lease.Router is { } router ? [new CniRoute(IpPrefix.Parse("0.0.0.0/0")) { Gateway = router }] : [],
            Dns = new CniDns { Nameservers = [.. lease.DnsServers.Select(d => d.ToString())], Domain = lease.DomainName },
        };
        // CNI's writer indents; the protocol is one line: copy it through a compact writer.
        var bytes = CniResultJson.Write(result, CniVersions.Latest);
        return w =>
        {
            using var document = JsonDocument.Parse(bytes);
            document.RootElement.WriteTo(w);
        };
    }

    static uint NewTransactionId() => (uint)Random.Shared.NextInt64(1, uint.MaxValue);

    public void Dispose()
    {
        _stop.Cancel();
        _maintenance?.Join(TimeSpan.FromSeconds(10));
    }
}
