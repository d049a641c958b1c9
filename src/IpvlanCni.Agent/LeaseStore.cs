using System.Net;
using System.Text.Json;
using IpvlanCni.Cni;
using IpvlanCni.Dhcp;
using IpvlanCni.Network;

namespace IpvlanCni.Agent;

/// <summary>A lease as the agent keeps it: whose, where its pod lives, the lease, and why it was lost if it was.</summary>
public sealed record StoredLease(ClientIdentity Identity, string NetnsPath, byte[] HardwareAddress, DhcpLease Lease, string? LostReason);

/// <summary>
/// One JSON file per lease, named by the identity's key (hex digits only, so no runtime-chosen name reaches the file
/// system), written to a temporary file, flushed and renamed, so a crash leaves the old lease or the new one.
/// </summary>
public sealed class LeaseStore(string directory)
{
    public const string DefaultDirectory = "/var/lib/cni/ipvlan-cni-dhcp";
    const string Suffix = ".lease";

    public string Directory { get; } = directory;

    string PathOf(string key) => Path.Join(Directory, key + Suffix);

    public void Save(StoredLease stored)
    {
        System.IO.Directory.CreateDirectory(Directory);
        string path = PathOf(stored.Identity.Key);
        string temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            using (var w = new Utf8JsonWriter(file, new JsonWriterOptions { Indented = true }))
                Write(w, stored);
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Idempotent: no file (or no folder yet) is nothing to remove.</summary>
    public void Remove(ClientIdentity identity)
    {
        if (!System.IO.Directory.Exists(Directory))
            return;
        File.Delete(PathOf(identity.Key));
        File.Delete(PathOf(identity.Key) + ".tmp");
    }

    /// <summary>Every readable lease; a file that does not parse, or whose name is not its identity's key, is reported and skipped.</summary>
    public List<StoredLease> LoadAll(Action<string> problem)
    {
        var leases = new List<StoredLease>();
        if (!System.IO.Directory.Exists(Directory))
            return leases;
        foreach (string path in System.IO.Directory.EnumerateFiles(Directory, "*" + Suffix))
        {
            try
            {
                var stored = Read(File.ReadAllBytes(path));
                if (Path.GetFileName(path) != stored.Identity.Key + Suffix)
                    throw new CniException(CniErrorCode.DecodeFailure, $"holds the lease of {stored.Identity}, whose file is {stored.Identity.Key}{Suffix}");
                leases.Add(stored);
            }
            catch (Exception e) when (e is CniException or IOException or FormatException or ArgumentException)
            {
                problem($"{path}: {e.Message}");
            }
        }
        return leases;
    }

    static void Write(Utf8JsonWriter w, StoredLease s)
    {
        var lease = s.Lease;
        w.WriteStartObject();
        w.WriteString("network", s.Identity.Network);
        w.WriteString("containerId", s.Identity.ContainerId);
        w.WriteString("ifName", s.Identity.IfName);
        w.WriteString("netns", s.NetnsPath);
        w.WriteString("hardwareAddress", Convert.ToHexStringLower(s.HardwareAddress));
        w.WriteString("clientId", Convert.ToHexStringLower(s.Identity.ClientId));
        w.WriteString("address", lease.Address.ToString());
        w.WriteString("server", lease.ServerId.ToString());
        if (lease.Router is { } router)
            w.WriteString("router", router.ToString());
        w.WriteStartArray("dns");
        foreach (var dns in lease.DnsServers)
            w.WriteStringValue(dns.ToString());
        w.WriteEndArray();
        if (lease.DomainName is { } domain)
            w.WriteString("domain", domain);
        w.WriteStartArray("routes");
        foreach (var route in lease.ClasslessRoutes)
        {
            w.WriteStartObject();
            w.WriteString("dst", route.Destination.ToString());
            w.WriteString("router", route.Router.ToString());
            w.WriteEndObject();
        }
        w.WriteEndArray();
        Time(w, "acquiredAt", lease.AcquiredAt);
        Time(w, "renewAt", lease.RenewAt);
        Time(w, "rebindAt", lease.RebindAt);
        Time(w, "expiresAt", lease.ExpiresAt);
        if (s.LostReason is { } reason)
            w.WriteString("lost", reason);
        w.WriteEndObject();
    }

    // Unix seconds; an infinite lease's times are absent.
    static void Time(Utf8JsonWriter w, string name, DateTimeOffset at)
    {
        if (at != DateTimeOffset.MaxValue)
            w.WriteNumber(name, at.ToUnixTimeSeconds());
    }

    static StoredLease Read(byte[] json)
    {
        var r = CniConfigReader.Parse(json, "lease file");
        var identity = DhcpService.ParseIdentity(r);
        string netns = r.GetRequiredString("netns");
        DateTimeOffset Time(string name) => r.TryGetValue(name, out var v)
            ? DateTimeOffset.FromUnixTimeSeconds(v.Element.TryGetInt64(out long t) && t is >= 0 and < 253402300799 ? t : throw new FormatException($"{name} is not a time"))
            : DateTimeOffset.MaxValue;
        var lease = new DhcpLease
        {
            Address = r.GetPrefix("address") ?? throw new FormatException("address missing"),
            ServerId = r.GetAddress("server") ?? throw new FormatException("server missing"),
            Router = r.GetAddress("router"),
            DnsServers = [.. r.GetArray("dns").Select(d => d.AsAddress())],
            DomainName = r.GetString("domain"),
            ClasslessRoutes = [.. r.GetArray("routes").Select(x => new DhcpRoute(x.GetPrefix("dst") ?? throw new FormatException("route without dst"),
                x.GetAddress("router") ?? throw new FormatException("route without router")))],
            AcquiredAt = Time("acquiredAt"),
            RenewAt = Time("renewAt"),
            RebindAt = Time("rebindAt"),
            ExpiresAt = Time("expiresAt"),
        };
        return new StoredLease(identity, netns, Convert.FromHexString(r.GetRequiredString("hardwareAddress")), lease, r.GetString("lost"));
    }
}
