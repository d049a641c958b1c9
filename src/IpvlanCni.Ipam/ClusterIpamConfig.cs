using System.Text.Json;
using IpvlanCni.Cni;

namespace IpvlanCni.Ipam;

/// <summary>
/// The keys of IPAM type "ipvlan-cni-ipam" (cluster-wide addresses in etcd), parsed once: host-local's ranges,
/// routes and resolvConf (same syntax, same checks), plus where etcd is and how this node uses it.
/// Both the plugin (to refuse bad input before asking anyone) and the agent (which acts on it) parse with this.
/// </summary>
public sealed record ClusterIpamConfig
{
    public const string DefaultKeyPrefix = "/ipvlan-cni/ipam/v1";
    public const int DefaultBlockSize = 16;
    public const int DefaultMaxBlocksPerNode = 20;
    public const int DefaultTimeoutSeconds = 10;
    public const int DefaultTombstoneSeconds = 3600;
    public const int DefaultGcGraceSeconds = 60;

    public required string Network { get; init; }
    /// <summary>This node's name: names its blocks and attachments; never used to reclaim anything.</summary>
    public required string Node { get; init; }
    public required IReadOnlyList<Uri> Endpoints { get; init; }
    public required HostLocalConfig HostLocal { get; init; }
    public string KeyPrefix { get; init; } = DefaultKeyPrefix;
    /// <summary>Addresses per block (a power of two): the unit a node claims so that its ADDs touch only its keys.</summary>
    public int BlockSize { get; init; } = DefaultBlockSize;
    public int MaxBlocksPerNode { get; init; } = DefaultMaxBlocksPerNode;
    /// <summary>true: a node allocates only from blocks it owns (no borrowing), so it can be full while the range is not.</summary>
    public bool StrictBlocks { get; init; }
    /// <summary>Whole-request deadline: ADD/DEL answer (success or code 11) within this.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(DefaultTimeoutSeconds);
    /// <summary>How long a DEL's tombstone fences a late ADD of the same attachment (etcd lease; expiry early or late is harmless).</summary>
    public int TombstoneSeconds { get; init; } = DefaultTombstoneSeconds;
    /// <summary>GC spares attachments this young (this node's monotonic clock), so an ADD racing the runtime's list survives.</summary>
    public TimeSpan GcGrace { get; init; } = TimeSpan.FromSeconds(DefaultGcGraceSeconds);
    public string? CaFile { get; init; }
    public string? CertFile { get; init; }
    public string? KeyFile { get; init; }
    public string? Username { get; init; }
    public string? Password { get; init; }

    /// <summary>Endpoints and credentials: the agent keeps one etcd connection per distinct value (a corrected password is a new one).</summary>
    public string ConnectionKey => string.Join(",", Endpoints) + "|" + CaFile + "|" + CertFile + "|" + KeyFile + "|" + Username + "|" + Password;

    public static ClusterIpamConfig Parse(JsonElement ipam, CniRequest request)
    {
        const string p = "ipam";
        var hostLocal = HostLocalConfig.Parse(ipam, request);
        if (hostLocal.RequestedIps.Count > 0)
            throw IpamJson.Invalid(p, "ipvlan-cni-ipam does not hand out requested addresses (CNI_ARGS IP, args.cni.ips, runtimeConfig.ips): use host-local or static for fixed addresses");

        var endpoints = new List<Uri>();
        int i = 0;
        foreach (var e in IpamJson.GetArray(ipam, "etcdEndpoints", p))
        {
            string ep = $"{p}.etcdEndpoints[{i++}]";
            if (e.ValueKind != JsonValueKind.String)
                throw IpamJson.WrongType(ep, "a string", e);
            endpoints.Add(ParseEndpoint(e.GetString()!, ep));
        }
        if (endpoints.Count == 0)
            throw IpamJson.Invalid($"{p}.etcdEndpoints", "missing: list the etcd members as http:// or https:// URLs");
        if (endpoints.Select(u => u.Scheme).Distinct().Count() > 1)
            throw IpamJson.Invalid($"{p}.etcdEndpoints", "mixes http:// and https:// members");

        string node = IpamJson.GetString(ipam, "node", p) is { Length: > 0 } n ? n : Environment.MachineName;
        ValidateNodeName(node, $"{p}.node");

        string prefix = IpamJson.GetString(ipam, "keyPrefix", p) ?? DefaultKeyPrefix;
        if (prefix.Length is < 2 or > 200 || prefix[0] != '/' || prefix[^1] == '/' || prefix.Contains("//") ||
            prefix.AsSpan().ContainsAnyExcept("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/"))
            throw IpamJson.Invalid($"{p}.keyPrefix", $"\"{prefix}\" is not a key prefix (starts with '/', no trailing '/', letters, digits, '_', '.', '-')");

        int blockSize = IpamJson.GetInt(ipam, "blockSize", p) ?? DefaultBlockSize;
        if (blockSize is < 1 or > 65536 || (blockSize & (blockSize - 1)) != 0)
            throw IpamJson.Invalid($"{p}.blockSize", $"{blockSize} is not a power of two between 1 and 65536");
        int maxBlocks = IpamJson.GetInt(ipam, "maxBlocksPerNode", p) ?? DefaultMaxBlocksPerNode;
        if (maxBlocks is < 1 or > 4096)
            throw IpamJson.Invalid($"{p}.maxBlocksPerNode", $"{maxBlocks} is not between 1 and 4096");
        int timeout = IpamJson.GetInt(ipam, "timeoutSeconds", p) ?? DefaultTimeoutSeconds;
        if (timeout is < 1 or > 120)
            throw IpamJson.Invalid($"{p}.timeoutSeconds", $"{timeout} is not between 1 and 120");
        int tomb = IpamJson.GetInt(ipam, "tombstoneSeconds", p) ?? DefaultTombstoneSeconds;
        if (tomb is < 10 or > 7 * 86400)
            throw IpamJson.Invalid($"{p}.tombstoneSeconds", $"{tomb} is not between 10 and 604800");
        int grace = IpamJson.GetInt(ipam, "gcGraceSeconds", p) ?? DefaultGcGraceSeconds;
        if (grace is < 0 or > 86400)
            throw IpamJson.Invalid($"{p}.gcGraceSeconds", $"{grace} is not between 0 and 86400");
        bool strict = false;
        if (IpamJson.TryGet(ipam, "strictBlocks", out var s))
            strict = s.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw IpamJson.WrongType($"{p}.strictBlocks", "a boolean", s),
            };

        string? File(string key)
        {
            var v = IpamJson.GetString(ipam, key, p);
            if (string.IsNullOrEmpty(v))
                return null;
            if (!Path.IsPathFullyQualified(v) || v.Contains('\0'))
                throw IpamJson.Invalid($"{p}.{key}", $"\"{v}\" is not an absolute path");
            return v;
        }
        var ca = File("etcdCaFile");
        var cert = File("etcdCertFile");
        var key = File("etcdKeyFile");
        if ((cert is null) != (key is null))
            throw IpamJson.Invalid($"{p}.{(cert is null ? "etcdCertFile" : "etcdKeyFile")}", "etcdCertFile and etcdKeyFile go together");
        if ((ca ?? cert) is not null && endpoints[0].Scheme != "https")
            throw IpamJson.Invalid($"{p}.etcdEndpoints", "TLS files are set but the endpoints are http://");
        string? user = IpamJson.GetString(ipam, "etcdUsername", p);
        string? password = IpamJson.GetString(ipam, "etcdPassword", p);
        if (string.IsNullOrEmpty(user) != string.IsNullOrEmpty(password))
            throw IpamJson.Invalid($"{p}.etcdUsername", "etcdUsername and etcdPassword go together");

        return new ClusterIpamConfig
        {
            Network = hostLocal.Name,
            Node = node,
            Endpoints = endpoints,
            HostLocal = hostLocal,
            KeyPrefix = prefix,
            BlockSize = blockSize,
            MaxBlocksPerNode = maxBlocks,
            StrictBlocks = strict,
            Timeout = TimeSpan.FromSeconds(timeout),
            TombstoneSeconds = tomb,
            GcGrace = TimeSpan.FromSeconds(grace),
            CaFile = ca,
            CertFile = cert,
            KeyFile = key,
            Username = string.IsNullOrEmpty(user) ? null : user,
            Password = string.IsNullOrEmpty(password) ? null : password,
        };
    }

    /// <summary>A node name is part of etcd keys: DNS-label characters only, so it cannot reach another node's keys.</summary>
    public static string ValidateNodeName(string node, string path)
    {
        if (node.Length is 0 or > 253 || node is "." or ".." ||
            node.AsSpan().ContainsAnyExcept("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"))
            throw IpamJson.Invalid(path, $"\"{node}\" is not a node name (letters, digits, '_', '.', '-'; at most 253)");
        return node;
    }

    static Uri ParseEndpoint(string text, string path)
    {
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") ||
            string.IsNullOrEmpty(uri.Host) || uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.UserInfo.Length > 0)
            throw IpamJson.Invalid(path, $"\"{text}\" is not an http:// or https:// URL of an etcd member (like http://127.0.0.1:2379)");
        return uri;
    }
}
