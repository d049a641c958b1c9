using System.Net;
using System.Text.Json;
using IpvlanCni.Cni;
using IpvlanCni.Network;

namespace IpvlanCni.Ipam;

/// <summary>
/// Reads the config the way Go's encoding/json does for the reference plugins (keys match case-insensitively, null is
/// absent), and names the field path in every error: wrong JSON types are DecodeFailure, bad values InvalidNetworkConfig.
/// </summary>
internal static class IpamJson
{
    /// <summary>A bad value; one that came from CNI_ARGS is an invalid environment (4), the rest invalid configuration (7).</summary>
    public static CniException Invalid(string path, string problem) =>
        new(path.StartsWith("CNI_ARGS", StringComparison.Ordinal) ? CniErrorCode.InvalidEnvironment : CniErrorCode.InvalidNetworkConfig, $"{path}: {problem}");

    public static CniException WrongType(string path, string expected, JsonElement got) =>
        new(CniErrorCode.DecodeFailure, $"{path}: expected {expected}, got {got.ValueKind}");

    /// <summary>The member, or false when it is absent or null: keys matched as Go does (<see cref="CniConfigReader.TryGetMember"/>).</summary>
    public static bool TryGet(JsonElement obj, string name, out JsonElement value)
    {
        value = default;
        return obj.ValueKind == JsonValueKind.Object && CniConfigReader.TryGetMember(obj, name, out value);
    }

    public static string? GetString(JsonElement obj, string name, string path)
    {
        if (!TryGet(obj, name, out var v))
            return null;
        return v.ValueKind == JsonValueKind.String ? CniConfigReader.ReadString(v, $"{path}.{name}") : throw WrongType($"{path}.{name}", "a string", v);
    }

    public static JsonElement? GetObject(JsonElement obj, string name, string path)
    {
        if (!TryGet(obj, name, out var v))
            return null;
        return v.ValueKind == JsonValueKind.Object ? v : throw WrongType($"{path}.{name}", "an object", v);
    }

    public static JsonElement.ArrayEnumerator GetArray(JsonElement obj, string name, string path)
    {
        if (!TryGet(obj, name, out var v))
            return default;
        return v.ValueKind == JsonValueKind.Array ? v.EnumerateArray() : throw WrongType($"{path}.{name}", "an array", v);
    }

    public static List<string> GetStrings(JsonElement obj, string name, string path)
    {
        var list = new List<string>();
        int i = 0;
        foreach (var e in GetArray(obj, name, path))
        {
            list.Add(e.ValueKind == JsonValueKind.String ? CniConfigReader.ReadString(e, $"{path}.{name}[{i}]") : throw WrongType($"{path}.{name}[{i}]", "a string", e));
            i++;
        }
        return list;
    }

    public static int? GetInt(JsonElement obj, string name, string path)
    {
        if (!TryGet(obj, name, out var v))
            return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) ? n : throw WrongType($"{path}.{name}", "an integer", v);
    }

    public static IPAddress ParseIp(string text, string path) =>
        IpMath.TryParse(text, out var ip) ? ip : throw Invalid(path, $"\"{text}\" is not an IP address");

    public static IpPrefix ParseCidr(string text, string path) =>
        IpMath.TryParseCidr(text, out var p) ? p : throw Invalid(path, $"\"{text}\" is not a CIDR");

    /// <summary>CNI's ip.IP: an address with or without a prefix length; only the address is kept.</summary>
    public static IPAddress ParseIpOrCidr(string text, string path)
    {
        if (text.Contains('/'))
            return IpMath.TryParseCidr(text, out var p) ? p.Address : throw Invalid(path, $"\"{text}\" is not an IP address or CIDR");
        return ParseIp(text, path);
    }

    /// <summary>The routes list ([{dst, gw}] plus the 1.1.0 route attributes).</summary>
    public static List<CniRoute> ParseRoutes(JsonElement obj, string path)
    {
        var routes = new List<CniRoute>();
        int i = 0;
        foreach (var r in GetArray(obj, "routes", path))
        {
            string rp = $"{path}.routes[{i++}]";
            if (r.ValueKind != JsonValueKind.Object)
                throw WrongType(rp, "an object", r);
            var dst = GetString(r, "dst", rp) ?? throw Invalid($"{rp}.dst", "missing");
            var gwText = GetString(r, "gw", rp);
            var destination = ParseCidr(dst, $"{rp}.dst");
            var gw = gwText is null ? null : ParseIp(gwText, $"{rp}.gw");
            CniResultJson.CheckFamily($"{rp}.gw", gw, destination.Family);
            routes.Add(new CniRoute(destination)
            {
                Gateway = gw,
                Mtu = GetInt(r, "mtu", rp),
                AdvMss = GetInt(r, "advmss", rp),
                Priority = GetInt(r, "priority", rp),
                Table = GetInt(r, "table", rp),
                Scope = GetInt(r, "scope", rp),
            });
        }
        return routes;
    }

    /// <summary>CNI_ARGS values for a key (exact, as types.LoadArgs matches the Go field name), comma lists split.</summary>
    public static IEnumerable<string> ArgValues(CniRequest request, string key) =>
        request.Args.Where(kv => kv.Key == key)
            .SelectMany(kv => kv.Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
}
