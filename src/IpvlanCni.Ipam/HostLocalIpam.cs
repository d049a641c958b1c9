using System.Net;
using IpvlanCni.Cni;
using IpvlanCni.Network;

namespace IpvlanCni.Ipam;

/// <summary>The reference host-local allocator over its on-disk store, interoperable with host-local 1.1.1 on one store.</summary>
public sealed class HostLocalIpam(HostLocalConfig config, NodeAddresses node) : IIpam, IConflictMarking
{
    /// <summary>
    /// The owner of an address another host answered for (ipam.probe): kept reserved, so never handed out; GC, which
    /// keeps only the runtime's attachments, gives it back, and the next ADD that gets it probes it again.
    /// </summary>
    public const string ConflictContainerId = "ipvlan-cni-probe-conflict";
    public const string ConflictIfName = "wire";

    public HostLocalIpam(HostLocalConfig config) : this(config, NodeAddresses.None)
    {
    }

    public HostLocalConfig Config { get; } = config;

    public CniResult Allocate(CniRequest request)
    {
        var dns = Config.ResolvConf is { } path ? ResolvConf.Parse(path) : new CniDns();
        var result = new CniResult { Routes = [.. Config.Routes], Dns = dns };
        using var store = DiskStore.Open(Config.DataDir, Config.Name);
        var requested = new List<IPAddress>(Config.RequestedIps);
        try
        {
            for (int i = 0; i < Config.RangeSets.Count; i++)
            {
                var set = Config.RangeSets[i];
                var wanted = requested.FirstOrDefault(set.Contains);
                if (wanted is not null)
                    requested.Remove(wanted);
                try
                {
                    result.Ips.Add(Get(store, set, i, request.ContainerId, request.IfName, wanted));
                }
                catch (CniException e)
                {
                    throw new CniException(e.Code, $"network \"{Config.Name}\": failed to allocate for range {i}: {e.Message}", e.Details, e);
                }
            }
            if (requested.Count > 0)
                throw new CniException(CniErrorCode.InvalidNetworkConfig,
                    $"network \"{Config.Name}\": failed to allocate all requested IPs: {string.Join(" ", requested.Select(IpMath.Format))} (not in any range set)");
        }
        catch
        {
            // As the reference: once per range set already served, give back what this attachment holds. A first set that
            // fails (e.g. a duplicate ADD) releases nothing, so the existing reservation survives.
            for (int i = 0; i < result.Ips.Count; i++)
                ReleaseById(store, request.ContainerId, request.IfName);
            throw;
        }
        return result;
    }

    CniIpConfig Get(DiskStore store, AddressRangeSet set, int index, string id, string ifName, IPAddress? wanted)
    {
        if (wanted is not null)
        {
            var range = set.RangeFor(wanted)!;
            if (wanted.Equals(range.Gateway))
                throw new CniException(CniErrorCode.InvalidNetworkConfig, $"requested ip {IpMath.Format(wanted)} is subnet's gateway");
            if (node.Holds(wanted))
                throw node.Refusal(wanted, "requested ip");
            if (!store.Reserve(id, ifName, wanted, index))
                throw new CniException(CniErrorCode.Internal,
                    $"requested IP address {IpMath.Format(wanted)} is not available in range set {set}");
            return new CniIpConfig(new IpPrefix(wanted, range.Subnet.PrefixLength)) { Gateway = range.Gateway };
        }

        // The spec forbids a second allocation for the same attachment.
        string key = DiskStore.Key(id, ifName), oldKey = DiskStore.LegacyKey(id);
        foreach (var r in store.List())
            if ((r.Key == key || r.Key == oldKey) && set.Contains(r.Address))
                throw new CniException(CniErrorCode.Internal,
                    $"{IpMath.Format(r.Address)} has been allocated to {id}, duplicate allocation is not allowed");

        foreach (var (range, ip) in Candidates(set, store.LastReserved(index)))
            if (!node.Holds(ip) && store.Reserve(id, ifName, ip, index))
                return new CniIpConfig(new IpPrefix(ip, range.Subnet.PrefixLength)) { Gateway = range.Gateway };

        throw new CniException(CniErrorCode.AddressesExhausted, $"no IP addresses available in range set: {set}");
    }

    /// <summary>
    /// The reference's round robin: every address of every range once, starting after the last reserved one (or at the
    /// first range's start), wrapping from a range's end to the next range's start, skipping each range's gateway.
    /// </summary>
    internal static IEnumerable<(AddressRange Range, IPAddress Address)> Candidates(AddressRangeSet set, IPAddress? lastReserved)
    {
        var ranges = set.Ranges;
        int idx = 0;
        UInt128 cur = IpMath.ToNumber(ranges[0].Start);
        int lastIdx = lastReserved is null ? -1 : ranges.ToList().FindIndex(r => r.Contains(lastReserved));
        if (lastIdx >= 0)
            (idx, cur) = Advance(ranges, lastIdx, IpMath.ToNumber(lastReserved!));
        var (startIdx, start) = (idx, cur);
        do
        {
            var range = ranges[idx];
            var ip = IpMath.FromNumber(cur, range.Family);
            if (!ip.Equals(range.Gateway))
                yield return (range, ip);
            (idx, cur) = Advance(ranges, idx, cur);
        } while (idx != startIdx || cur != start);
    }

    static (int, UInt128) Advance(IReadOnlyList<AddressRange> ranges, int idx, UInt128 cur)
    {
        if (cur != IpMath.ToNumber(ranges[idx].End))
            return (idx, cur + 1);
        idx = (idx + 1) % ranges.Count;
        return (idx, IpMath.ToNumber(ranges[idx].Start));
    }

    public void SetAside(CniRequest request, IPAddress address)
    {
        using var store = DiskStore.Open(Config.DataDir, Config.Name);
        if (!store.Transfer(address, DiskStore.Key(request.ContainerId, request.IfName), ConflictContainerId, ConflictIfName))
            throw new CniException(CniErrorCode.Internal, $"host-local: {IpMath.Format(address)} is not reserved for {request.ContainerId}/{request.IfName}");
        var errors = ReleaseById(store, request.ContainerId, request.IfName);
        if (errors.Count > 0)
            throw new CniException(CniErrorCode.IoFailure, string.Join(";", errors));
    }

    public void Release(CniRequest request)
    {
        DiskStore store;
        try
        {
            store = DiskStore.Open(Config.DataDir, Config.Name);
        }
        catch (CniException e) when (e.Code == CniErrorCode.InvalidNetworkConfig && HoldsNothing(request))
        {
            return; // a store whose lock is unusable (a planted symlink) cannot keep a DEL of nothing failing forever
        }
        using var held = store;
        // A reservation killed half-way leaves a temporary; under the store lock no live writer owns one.
        store.DeleteLeftovers();
        // The reference runs this once per range set over the whole directory: the old-format ("id" only) fallback then
        // also applies when a later set finds nothing left in the new format. Kept as is for identical results.
        var errors = new List<string>();
        foreach (var _ in Config.RangeSets)
            errors.AddRange(ReleaseById(store, request.ContainerId, request.IfName));
        if (errors.Count > 0)
            throw new CniException(CniErrorCode.IoFailure, string.Join(";", errors));
    }

    /// <summary>Read without the lock: the store holds no reservation of this attachment.</summary>
    bool HoldsNothing(CniRequest request)
    {
        using var unlocked = DiskStore.TryOpenUnlocked(Config.DataDir, Config.Name);
        if (unlocked is null)
            return false;
        string key = DiskStore.Key(request.ContainerId, request.IfName), oldKey = DiskStore.LegacyKey(request.ContainerId);
        return !unlocked.List().Any(r => r.Key == key || r.Key == oldKey);
    }

    static List<string> ReleaseById(DiskStore store, string id, string ifName)
    {
        var errors = new List<string>();
        string key = DiskStore.Key(id, ifName);
        if (ReleaseWhere(store, r => r.Key == key, errors) == 0)
            ReleaseWhere(store, r => r.Key == DiskStore.LegacyKey(id), errors);
        return errors;
    }

    static int ReleaseWhere(DiskStore store, Func<Reservation, bool> match, List<string> errors)
    {
        int released = 0;
        foreach (var r in store.List().Where(match))
        {
            try
            {
                store.Release(r.Address);
                released++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                errors.Add($"releasing {IpMath.Format(r.Address)}: {e.Message}");
            }
        }
        return released;
    }

    public void Check(CniRequest request)
    {
        using var store = DiskStore.Open(Config.DataDir, Config.Name);
        string key = DiskStore.Key(request.ContainerId, request.IfName), oldKey = DiskStore.LegacyKey(request.ContainerId);
        var mine = store.List().Where(r => r.Key == key || r.Key == oldKey).Select(r => r.Address).ToHashSet();
        if (mine.Count == 0)
            throw new CniException(CniErrorCode.UnknownContainer, $"host-local: Failed to find address added by container {request.ContainerId}");
        // Beyond the reference: every address of ours the runtime recorded must still be reserved for this attachment.
        foreach (var ip in request.Config.PrevResult?.Ips ?? [])
        {
            var address = IpMath.Canonical(ip.Address.Address);
            if (Config.RangeSets.Any(s => s.Contains(address)) && !mine.Contains(address))
                throw new CniException(CniErrorCode.Internal,
                    $"host-local: {IpMath.Format(address)} from prevResult is not reserved for {request.ContainerId}/{request.IfName}");
        }
    }

    public void Status(CniRequest request)
    {
        try
        {
            using var store = DiskStore.Open(Config.DataDir, Config.Name);
        }
        catch (CniException e)
        {
            throw new CniException(CniErrorCode.PluginNotAvailable, e.Message, e.Details, e);
        }
    }

    public void GarbageCollect(CniRequest request, IReadOnlyList<GcAttachment> validAttachments)
    {
        using var store = DiskStore.Open(Config.DataDir, Config.Name);
        var keys = validAttachments.Select(a => DiskStore.Key(a.ContainerId, a.IfName)).ToHashSet(StringComparer.Ordinal);
        var ids = validAttachments.Select(a => DiskStore.LegacyKey(a.ContainerId)).ToHashSet(StringComparer.Ordinal);
        var errors = new List<string>();
        // Old-format files name only the container: kept while any of its attachments is valid. Truncated or garbage
        // content matches nothing valid and is released.
        ReleaseWhere(store, r => !(keys.Contains(r.Key) || (r.IfName is null && ids.Contains(r.Key))), errors);
        try
        {
            store.DeleteLeftovers();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            errors.Add($"removing temporary files: {e.Message}");
        }
        if (errors.Count > 0)
            throw new CniException(CniErrorCode.IoFailure, $"network \"{Config.Name}\": garbage collection failed: {string.Join("; ", errors)}");
    }

    /// <summary>Every reservation in this network's store, read under the lock.</summary>
    public IReadOnlyList<Reservation> ListReservations()
    {
        using var store = DiskStore.Open(Config.DataDir, Config.Name);
        return store.List();
    }
}
