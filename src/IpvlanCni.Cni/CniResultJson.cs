using System.Net;
using System.Net.Sockets;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace IpvlanCni.Cni;

/// <summary>
/// The canonical result to and from the JSON of each supported version, shaped like the Go reference
/// (containernetworking/cni pkg/types/040 and 100) so runtimes see what they see from the reference plugins:
/// 0.3.x/0.4.0 write fields in struct order, ips carry "version", and "dns" is always written (a Go struct);
/// 1.x results pass through a map in Go, so their keys come out sorted and an empty "dns" is dropped.
/// Route mtu/advmss/priority/table/scope are 1.1.0 additions and are written only for 1.1.0.
/// </summary>
public static class CniResultJson
{
    /// <summary>Go's json.MarshalIndent(x, "", "    ") layout; HTML characters are left alone (no browser reads this).</summary>
    internal static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        IndentSize = 4,
        NewLine = "\n",
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The result in the shape of <paramref name="version"/>; <see cref="CniResult.CniVersion"/> is ignored.</summary>
    public static byte[] Write(CniResult result, string version)
    {
        if (!CniVersions.IsSupported(version))
            throw new CniException(CniErrorCode.IncompatibleVersion, $"cannot write a result for CNI version '{version}'");
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            if (CniVersions.IsPre100(version))
                Write04x(writer, result, version);
            else
                Write1x(writer, result, version);
        }
        return buffer.ToArray();
    }

    public static string WriteString(CniResult result, string version) =>
        System.Text.Encoding.UTF8.GetString(Write(result, version));

    static void Write04x(Utf8JsonWriter w, CniResult r, string version)
    {
        w.WriteStartObject();
        w.WriteString("cniVersion", version);
        if (r.Interfaces.Count > 0)
        {
            w.WriteStartArray("interfaces");
            foreach (var i in r.Interfaces)
            {
                w.WriteStartObject();
                w.WriteString("name", i.Name);
                WriteIfSet(w, "mac", i.Mac);
                WriteIfSet(w, "sandbox", i.Sandbox);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        if (r.Ips.Count > 0)
        {
            w.WriteStartArray("ips");
            foreach (var ip in r.Ips)
            {
                w.WriteStartObject();
                w.WriteString("version", ip.Address.IsIPv4 ? "4" : "6");
                if (ip.Interface is int index)
                    w.WriteNumber("interface", index);
                w.WriteString("address", ip.Address.ToString());
                WriteIfSet(w, "gateway", ip.Gateway?.ToString());
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        if (r.Routes.Count > 0)
        {
            w.WriteStartArray("routes");
            foreach (var route in r.Routes)
            {
                w.WriteStartObject();
                w.WriteString("dst", route.Destination.ToString());
                WriteIfSet(w, "gw", route.Gateway?.ToString());
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteStartObject("dns");
        WriteIfAny(w, "nameservers", r.Dns.Nameservers);
        WriteIfSet(w, "domain", r.Dns.Domain);
        WriteIfAny(w, "search", r.Dns.Search);
        WriteIfAny(w, "options", r.Dns.Options);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    // Keys in sorted order at every level: Go's 1.x MarshalJSON round-trips through map[string]interface{}.
    static void Write1x(Utf8JsonWriter w, CniResult r, string version)
    {
        bool routeExtras = CniVersions.AtLeast(version, "1.1.0");
        w.WriteStartObject();
        w.WriteString("cniVersion", version);
        if (!r.Dns.IsEmpty)
        {
            w.WriteStartObject("dns");
            WriteIfSet(w, "domain", r.Dns.Domain);
            WriteIfAny(w, "nameservers", r.Dns.Nameservers);
            WriteIfAny(w, "options", r.Dns.Options);
            WriteIfAny(w, "search", r.Dns.Search);
            w.WriteEndObject();
        }
        if (r.Interfaces.Count > 0)
        {
            w.WriteStartArray("interfaces");
            foreach (var i in r.Interfaces)
            {
                w.WriteStartObject();
                WriteIfSet(w, "mac", i.Mac);
                WriteIfNonZero(w, "mtu", i.Mtu);
                w.WriteString("name", i.Name);
                WriteIfSet(w, "pciID", i.PciId);
                WriteIfSet(w, "sandbox", i.Sandbox);
                WriteIfSet(w, "socketPath", i.SocketPath);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        if (r.Ips.Count > 0)
        {
            w.WriteStartArray("ips");
            foreach (var ip in r.Ips)
            {
                w.WriteStartObject();
                w.WriteString("address", ip.Address.ToString());
                WriteIfSet(w, "gateway", ip.Gateway?.ToString());
                if (ip.Interface is int index)
                    w.WriteNumber("interface", index);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        if (r.Routes.Count > 0)
        {
            w.WriteStartArray("routes");
            foreach (var route in r.Routes)
            {
                w.WriteStartObject();
                if (routeExtras)
                    WriteIfNonZero(w, "advmss", route.AdvMss);
                w.WriteString("dst", route.Destination.ToString());
                WriteIfSet(w, "gw", route.Gateway?.ToString());
                if (routeExtras)
                {
                    WriteIfNonZero(w, "mtu", route.Mtu);
                    WriteIfNonZero(w, "priority", route.Priority);
                    // Go's table and scope are *int: 0 is a value (scope universe), only nil is left out.
                    if (route.Scope is int scope)
                        w.WriteNumber("scope", scope);
                    if (route.Table is int table)
                        w.WriteNumber("table", table);
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    static void WriteIfSet(Utf8JsonWriter w, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
            w.WriteString(name, value);
    }

    // Go's int fields with omitempty: zero means "not set".
    static void WriteIfNonZero(Utf8JsonWriter w, string name, int? value)
    {
        if (value is int v && v != 0)
            w.WriteNumber(name, v);
    }

    static void WriteIfAny(Utf8JsonWriter w, string name, List<string> values)
    {
        if (values.Count == 0)
            return;
        w.WriteStartArray(name);
        foreach (var v in values)
            w.WriteStringValue(v);
        w.WriteEndArray();
    }

    /// <summary>Parses a result document (e.g. a delegated plugin's stdout) of any supported version.</summary>
    public static CniResult Parse(ReadOnlyMemory<byte> json, string? fallbackVersion = null) =>
        Read(CniConfigReader.Parse(json, "result"), fallbackVersion);

    /// <summary>
    /// Reads a result of any supported version into the canonical shape. Its own "cniVersion" wins; without one
    /// (older writers omitted it) <paramref name="fallbackVersion"/>, normally the configuration's, is assumed.
    /// Reading is shape-tolerant: "version" on ips and the 1.1.0 route keys are accepted in any version.
    /// </summary>
    public static CniResult Read(CniConfigReader node, string? fallbackVersion = null)
    {
        string? version = node.GetString("cniVersion");
        if (string.IsNullOrEmpty(version))
            version = fallbackVersion ?? CniVersions.Latest;
        if (!CniVersions.IsSupported(version))
            throw new CniException(CniErrorCode.IncompatibleVersion,
                $"{node.Child("cniVersion")} '{version}' is not supported", $"supported versions: {string.Join(", ", CniVersions.Supported)}");

        var interfaces = node.GetArray("interfaces").Select(ReadInterface).ToList();
        var ips = node.GetArray("ips").Select(n => ReadIp(n, interfaces.Count)).ToList();
        var routes = node.GetArray("routes").Select(ReadRoute).ToList();
        var dns = node.GetObject("dns") is CniConfigReader d ? ReadDns(d) : new CniDns();
        return new CniResult { CniVersion = version, Interfaces = interfaces, Ips = ips, Routes = routes, Dns = dns };
    }

    static CniInterface ReadInterface(CniConfigReader n)
    {
        string name = n.GetRequiredString("name");
        return new CniInterface(name)
        {
            Mac = NullIfEmpty(n.GetString("mac")),
            Mtu = n.GetInt32("mtu", 0),
            Sandbox = NullIfEmpty(n.GetString("sandbox")),
            SocketPath = NullIfEmpty(n.GetString("socketPath")),
            PciId = NullIfEmpty(n.GetString("pciID")),
        };
    }

    static CniIpConfig ReadIp(CniConfigReader n, int interfaceCount)
    {
        var address = n.GetRequired("address").AsPrefix();
        if (n.GetString("version") is string family)
        {
            string expected = address.IsIPv4 ? "4" : "6";
            if (family != expected)
                throw new CniException(CniErrorCode.DecodeFailure,
                    $"{n.Child("version")} is '{family}' but {n.Child("address")} {address} is IPv{expected}");
        }
        var gateway = n.GetAddress("gateway");
        CheckFamily(n, "gateway", gateway, address.Family);
        int? index = n.GetInt32("interface", 0);
        if (index >= interfaceCount)
            throw new CniException(CniErrorCode.DecodeFailure,
                $"{n.Child("interface")} is {index} but the result has {interfaceCount} interface(s)");
        return new CniIpConfig(address) { Gateway = gateway, Interface = index };
    }

    static CniRoute ReadRoute(CniConfigReader n)
    {
        var destination = n.GetRequired("dst").AsPrefix();
        var gateway = n.GetAddress("gw");
        CheckFamily(n, "gw", gateway, destination.Family);
        return new CniRoute(destination)
        {
            Gateway = gateway,
            Mtu = n.GetInt32("mtu", 0),
            AdvMss = n.GetInt32("advmss", 0),
            Priority = n.GetInt32("priority", 0),
            Table = n.GetInt32("table", 0),
            Scope = n.GetInt32("scope", 0, 255),
        };
    }

    /// <summary>The one reader of a "dns" object: results, prevResult, the plugin's "dns" and static IPAM's.</summary>
    public static CniDns ReadDns(CniConfigReader n) => new()
    {
        Nameservers = [.. n.GetStringArray("nameservers")],
        Domain = NullIfEmpty(n.GetString("domain")),
        Search = [.. n.GetStringArray("search")],
        Options = [.. n.GetStringArray("options")],
    };

    static void CheckFamily(CniConfigReader n, string name, IPAddress? address, AddressFamily family) =>
        CheckFamily(n.Child(name), address, family);

    /// <summary>The one family check of a gateway against its route's destination or its address (6 naming the field).</summary>
    public static void CheckFamily(string field, IPAddress? address, AddressFamily family)
    {
        if (address is not null && address.AddressFamily != family)
            throw new CniException(CniErrorCode.DecodeFailure,
                $"{field} {address} is not in the same address family as the destination/address beside it");
    }

    static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}

/// <summary>The spec's error object: {"cniVersion","code","msg","details"}.</summary>
public static class CniErrorJson
{
    public static byte[] Write(CniException error, string version)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, CniResultJson.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("cniVersion", version);
            w.WriteNumber("code", error.Code);
            w.WriteString("msg", error.Message);
            if (!string.IsNullOrEmpty(error.Details))
                w.WriteString("details", error.Details);
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>Reads a delegated plugin's error output; false when it is not an error object.</summary>
    public static bool TryRead(ReadOnlyMemory<byte> json, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out CniException? error)
    {
        error = null;
        try
        {
            var root = CniConfigReader.Parse(json, "error");
            if (root.GetInt32("code") is not int code)
                return false;
            error = new CniException(code, root.GetString("msg") ?? "", root.GetString("details"));
            return true;
        }
        catch (CniException)
        {
            return false;
        }
    }
}
