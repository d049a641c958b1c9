using System.Net;
using System.Text.Json;
using IpvlanCni.Cni;
using IpvlanCni.Network;

namespace IpvlanCni.Plugin;

/// <summary>Where pods' traffic for other networks leaves: the business network, or the node.</summary>
public enum EgressMode { Underlay, Host }

/// <summary>The reach from pods to node addresses (and back), the design note's method 3.</summary>
public sealed record HostAccessConfig(IReadOnlyList<IPAddress> Addresses, InterfaceName? Interface);

/// <summary>
/// The plugin's network configuration: the reference ipvlan plugin's keys (master, mode, mtu, linkInContainer,
/// ipam, dns) with the same meaning, plus ours (flag, hostAccess, egress, ipMasq, stateDir, logFile).
/// </summary>
public sealed record PluginConfig
{
    public const string DefaultStateDir = "/var/lib/cni/ipvlan-cni";

    public required NetworkConfig Network { get; init; }
    /// <summary>null: the default route's interface, or (chained) prevResult's single interface.</summary>
    public InterfaceName? Master { get; init; }
    public IpvlanMode Mode { get; init; } = IpvlanMode.L2;
    public IpvlanFlag Flag { get; init; } = IpvlanFlag.Bridge;
    /// <summary>0 = the kernel's default (the master's MTU).</summary>
    public int Mtu { get; init; }
    /// <summary>The master lives in the container's namespace, not the node's.</summary>
    public bool LinkInContainer { get; init; }
    /// <summary>The "ipam" object, absent when chained after a plugin that produced the addresses.</summary>
    public JsonElement? Ipam { get; init; }
    public CniDns Dns { get; init; } = new();
    public HostAccessConfig? HostAccess { get; init; }
    public EgressMode Egress { get; init; } = EgressMode.Underlay;
    public bool IpMasq { get; init; }
    public string StateDir { get; init; } = DefaultStateDir;
    public string? LogFile { get; init; }
    /// <summary>How long anything may take that the plugin waits for ("timeouts": {"lock", "ipam", "nat"}, seconds).</summary>
    public Deadlines Timeouts { get; init; } = new();

    public string? IpamType => Ipam is { } ipam && ipam.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String
        ? CniConfigReader.ReadString(type, "ipam.type")
        : null;

    /// <summary>Host-side state (host access or egress through the node) is configured.</summary>
    public bool UsesHostSide => HostAccess is not null || Egress == EgressMode.Host;

    public static PluginConfig Parse(CniRequest request)
    {
        var root = request.Root;
        var hostAccess = root.GetObject("hostAccess");
        var config = new PluginConfig
        {
            Network = request.Config,
            Master = InterfaceName(root, "master"),
            Mode = Choice(root, "mode", IpvlanMode.L2, ("l2", IpvlanMode.L2), ("l3", IpvlanMode.L3), ("l3s", IpvlanMode.L3S)),
            Flag = Choice(root, "flag", IpvlanFlag.Bridge, ("bridge", IpvlanFlag.Bridge), ("private", IpvlanFlag.Private), ("vepa", IpvlanFlag.Vepa)),
            Mtu = root.GetInt32("mtu", 0, 65535) ?? 0,
            LinkInContainer = root.GetBoolean("linkInContainer") ?? false,
            Ipam = root.GetObject("ipam")?.Element.Clone(),
            Dns = root.GetObject("dns") is { } dns ? CniResultJson.ReadDns(dns) : new CniDns(),
            HostAccess = hostAccess is { } access
                ? new HostAccessConfig([.. access.GetArray("addresses").Select(a => a.AsAddress())], InterfaceName(access, "interface"))
                : null,
            Egress = Choice(root, "egress", EgressMode.Underlay, ("underlay", EgressMode.Underlay), ("host", EgressMode.Host)),
            IpMasq = root.GetBoolean("ipMasq") ?? false,
            StateDir = AbsolutePath(root, "stateDir") ?? DefaultStateDir,
            LogFile = ParseLogFile(root, request.Environment),
            Timeouts = Deadlines.Parse(root.GetObject("timeouts")),
        };
        // Valid values this version cannot honour together: the spec's code 2 (unsupported field), naming key and value.
        if (config.LinkInContainer && config.UsesHostSide)
            throw Unsupported("linkInContainer", "true", "hostAccess and egress \"host\" need the master in the node's namespace");
        if (config.UsesHostSide && config.Flag != IpvlanFlag.Bridge)
            throw Unsupported("flag", $"\"{root.GetString("flag")}\"", "hostAccess and egress \"host\" need flag \"bridge\": with private or vepa the master never hands a pod's frames to another slave, so the node's slave cannot receive them");
        if (config.Egress == EgressMode.Host && config.Ipam is null)
            throw Invalid("egress", "egress \"host\" puts the IPAM gateway on the node, so it needs an ipam section");
        return config;
    }

    /// <summary>Just the logFile key of the dispatcher's parse, for the log line of a request the plugin may refuse.</summary>
    public static string? TryReadLogFile(CniConfigReader root)
    {
        try
        {
            return AbsolutePath(root, "logFile");
        }
        catch (CniException)
        {
            return null;
        }
    }

    static T Choice<T>(CniConfigReader reader, string key, T fallback, params (string Name, T Value)[] choices)
    {
        string? text = reader.GetString(key);
        if (string.IsNullOrEmpty(text))
            return fallback;
        foreach (var (name, value) in choices)
            if (name == text)
                return value;
        throw Invalid(reader.Child(key), $"unknown value \"{text}\" (expected {string.Join(", ", choices.Select(c => c.Name))})");
    }

    static InterfaceName? InterfaceName(CniConfigReader reader, string key)
    {
        string? name = reader.GetString(key);
        if (string.IsNullOrEmpty(name))
            return null;
        if (!Cni.InterfaceName.TryParse(name, out var parsed, out string problem))
            throw Invalid(reader.Child(key), $"\"{CniNames.Truncate(name)}\" {problem}");
        return parsed;
    }

    /// <summary>
    /// logFile (or IPVLAN_CNI_LOG, which overrides it): absolute, and absent or a regular file. A symlink, FIFO or
    /// device there is refused here, so that the request fails naming the key instead of the log quietly going nowhere.
    /// </summary>
    static string? ParseLogFile(CniConfigReader root, IReadOnlyDictionary<string, string> environment)
    {
        if (environment.GetValueOrDefault(PluginMain.LogFileVariable) is { Length: > 0 } fromEnvironment)
        {
            if (!Path.IsPathFullyQualified(fromEnvironment) || fromEnvironment.Contains('\0'))
                throw new CniException(CniErrorCode.InvalidEnvironment, $"{PluginMain.LogFileVariable}: \"{CniNames.Truncate(fromEnvironment)}\" is not an absolute path");
            if (CniLog.Problem(fromEnvironment) is { } problem)
                throw new CniException(CniErrorCode.InvalidEnvironment, $"{PluginMain.LogFileVariable}: \"{CniNames.Truncate(fromEnvironment)}\" {problem}");
        }
        string? path = AbsolutePath(root, "logFile");
        if (path is not null && CniLog.Problem(path) is { } fileProblem)
            throw Invalid(root.Child("logFile"), $"\"{CniNames.Truncate(path)}\" {fileProblem}");
        return path;
    }

    static string? AbsolutePath(CniConfigReader reader, string key)
    {
        string? value = reader.GetString(key);
        if (string.IsNullOrEmpty(value))
            return null;
        if (!Path.IsPathFullyQualified(value) || value.Contains('\0'))
            throw Invalid(reader.Child(key), $"\"{CniNames.Truncate(value)}\" is not an absolute path");
        return value;
    }

    internal static CniException Invalid(string field, string message) =>
        new(CniErrorCode.InvalidNetworkConfig, $"{field}: {message}");

    static CniException Unsupported(string field, string value, string why) =>
        new(CniErrorCode.UnsupportedField, $"{field}: {value} is not supported together with hostAccess or egress \"host\": {why}");
}

/// <summary>
/// Every wait has a bound: the node lock (then code 11, try again later), a delegated IPAM plugin and a netfilter
/// tool (then killed, and a typed error).
/// </summary>
public sealed record Deadlines
{
    public TimeSpan Lock { get; init; } = TimeSpan.FromSeconds(60);
    public TimeSpan Ipam { get; init; } = TimeSpan.FromSeconds(60);
    public TimeSpan Nat { get; init; } = TimeSpan.FromSeconds(10);

    internal static Deadlines Parse(CniConfigReader? reader) => reader is not { } r
        ? new Deadlines()
        : new Deadlines
        {
            Lock = Seconds(r, "lock") ?? TimeSpan.FromSeconds(60),
            Ipam = Seconds(r, "ipam") ?? TimeSpan.FromSeconds(60),
            Nat = Seconds(r, "nat") ?? TimeSpan.FromSeconds(10),
        };

    static TimeSpan? Seconds(CniConfigReader reader, string key) =>
        reader.GetInt32(key, 1, 3600) is int seconds ? TimeSpan.FromSeconds(seconds) : null;
}
