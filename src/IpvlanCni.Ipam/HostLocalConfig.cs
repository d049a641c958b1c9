using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using IpvlanCni.Cni;

namespace IpvlanCni.Ipam;

/// <summary>The host-local keys, parsed and canonicalized as the reference's LoadIPAMConfig does.</summary>
public sealed record HostLocalConfig
{
    public const string DefaultDataDir = "/var/lib/cni/networks";

    public required string Name { get; init; }
    public required string DataDir { get; init; }
    /// <summary>runtimeConfig.ipRanges, then the legacy top-level range, then ipam.ranges; the index names last_reserved_ip.N.</summary>
    public required IReadOnlyList<AddressRangeSet> RangeSets { get; init; }
    public IReadOnlyList<CniRoute> Routes { get; init; } = [];
    public string? ResolvConf { get; init; }
    /// <summary>CNI_ARGS IP, then args.cni.ips, then runtimeConfig.ips, without duplicates.</summary>
    public IReadOnlyList<IPAddress> RequestedIps { get; init; } = [];

    public static HostLocalConfig Parse(JsonElement ipam, CniRequest request)
    {
        const string p = "ipam";
        if (ipam.ValueKind != JsonValueKind.Object)
            throw IpamJson.WrongType(p, "an object", ipam);
        string name = ValidateNetworkName(request.Config.Name);

        var root = request.Root.Element;

        var requested = new List<IPAddress>();
        void AddRequested(IPAddress ip)
        {
            if (!requested.Contains(ip))
                requested.Add(ip);
        }
        foreach (var v in IpamJson.ArgValues(request, "IP"))
            AddRequested(IpamJson.ParseIpOrCidr(v, "CNI_ARGS IP"));
        if (IpamJson.GetObject(root, "args", "") is { } args && IpamJson.GetObject(args, "cni", "args") is { } cniArgs)
        {
            int i = 0;
            foreach (var s in IpamJson.GetStrings(cniArgs, "ips", "args.cni"))
                AddRequested(IpamJson.ParseIpOrCidr(s, $"args.cni.ips[{i++}]"));
        }
        var runtimeConfig = IpamJson.GetObject(root, "runtimeConfig", "");
        if (runtimeConfig is { } rc)
        {
            int i = 0;
            foreach (var s in IpamJson.GetStrings(rc, "ips", "runtimeConfig"))
                AddRequested(IpamJson.ParseIpOrCidr(s, $"runtimeConfig.ips[{i++}]"));
        }

        var sets = new List<AddressRangeSet>();
        if (runtimeConfig is { } rc2)
            sets.AddRange(ParseRangeSets(rc2, "ipRanges", "runtimeConfig"));
        // The legacy single range counts only when it has a subnet, as in the reference.
        if (IpamJson.GetString(ipam, "subnet", p) is not null)
            sets.Add(new AddressRangeSet([ParseRange(ipam, p)], p));
        sets.AddRange(ParseRangeSets(ipam, "ranges", p));
        if (sets.Count == 0)
            throw IpamJson.Invalid(p, "no IP ranges specified (ranges or subnet)");

        // CNI 0.2.0 and older results hold one address per family.
        if (!IsAtLeast030(request.Config.CniVersion) &&
            (sets.Count(s => s.Ranges[0].Family == AddressFamily.InterNetwork) > 1 ||
             sets.Count(s => s.Ranges[0].Family == AddressFamily.InterNetworkV6) > 1))
            throw IpamJson.Invalid(p, $"CNI version {request.Config.CniVersion} does not support more than 1 address per family");

        for (int i = 0; i < sets.Count; i++)
            for (int j = i + 1; j < sets.Count; j++)
                if (sets[i].Overlaps(sets[j]))
                    throw IpamJson.Invalid(sets[j].Path, $"range set {sets[j]} overlaps with {sets[i].Path} ({sets[i]})");

        string? dataDir = IpamJson.GetString(ipam, "dataDir", p);
        return new HostLocalConfig
        {
            Name = name,
            DataDir = string.IsNullOrEmpty(dataDir) ? DefaultDataDir : dataDir,
            RangeSets = sets,
            Routes = IpamJson.ParseRoutes(ipam, p),
            ResolvConf = IpamJson.GetString(ipam, "resolvConf", p) is { Length: > 0 } r ? r : null,
            RequestedIps = requested,
        };
    }

    /// <summary>The network name becomes a directory name: the one check of a network name (<see cref="NetworkName"/>).</summary>
    public static string ValidateNetworkName(string name) => NetworkName.Parse(name, "name").Value;

    static bool IsAtLeast030(string version)
    {
        var parts = version.Split('.');
        if (parts.Length != 3 || !int.TryParse(parts[0], out int major) || !int.TryParse(parts[1], out int minor))
            return true;
        return major > 0 || minor >= 3;
    }

    static IEnumerable<AddressRangeSet> ParseRangeSets(JsonElement obj, string key, string path)
    {
        var sets = new List<AddressRangeSet>();
        int i = 0;
        foreach (var set in IpamJson.GetArray(obj, key, path))
        {
            string sp = $"{path}.{key}[{i++}]";
            if (set.ValueKind != JsonValueKind.Array)
                throw IpamJson.WrongType(sp, "an array of ranges", set);
            var ranges = new List<AddressRange>();
            int j = 0;
            foreach (var r in set.EnumerateArray())
            {
                string rp = $"{sp}[{j++}]";
                if (r.ValueKind != JsonValueKind.Object)
                    throw IpamJson.WrongType(rp, "an object", r);
                var range = ParseRange(r, rp);
                if (ranges.Count > 0 && ranges[0].Family != range.Family)
                    throw IpamJson.Invalid($"{rp}.subnet", "mixed address families in one range set");
                if (ranges.FirstOrDefault(range.Overlaps) is { } other)
                    throw IpamJson.Invalid(rp, $"range {range} overlaps with {other.Path} ({other})");
                ranges.Add(range);
            }
            if (ranges.Count == 0)
                throw IpamJson.Invalid(sp, "empty range set");
            sets.Add(new AddressRangeSet(ranges, sp));
        }
        return sets;
    }

    static AddressRange ParseRange(JsonElement r, string rp)
    {
        var subnetText = IpamJson.GetString(r, "subnet", rp) ?? throw IpamJson.Invalid($"{rp}.subnet", "missing");
        var subnet = IpamJson.ParseCidr(subnetText, $"{rp}.subnet");
        IPAddress? Ip(string key) => IpamJson.GetString(r, key, rp) is { Length: > 0 } s ? IpamJson.ParseIp(s, $"{rp}.{key}") : null;
        return AddressRange.Create(subnet, Ip("rangeStart"), Ip("rangeEnd"), Ip("gateway"), rp);
    }
}
