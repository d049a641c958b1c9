namespace IpvlanCni.Cni;

public enum CniCommand { Add, Del, Check, Status, Gc, Version }

/// <summary>One invocation, parsed from the environment and stdin by the dispatcher.</summary>
public sealed record CniRequest
{
    public required CniCommand Command { get; init; }
    /// <summary>CNI_CONTAINERID, for ADD, DEL and CHECK (STATUS and GC have none: reading it there is a bug).</summary>
    public ContainerId ContainerId
    {
        get => _containerId ?? throw new InvalidOperationException($"{Command} has no CNI_CONTAINERID");
        init => _containerId = value;
    }
    /// <summary>CNI_NETNS (may be empty on DEL).</summary>
    public string NetnsPath { get; init; } = "";
    /// <summary>CNI_IFNAME, for ADD, DEL and CHECK.</summary>
    public InterfaceName IfName
    {
        get => _ifName ?? throw new InvalidOperationException($"{Command} has no CNI_IFNAME");
        init => _ifName = value;
    }
    /// <summary>ADD, DEL and CHECK name one attachment (container ID and interface); STATUS and GC do not.</summary>
    public bool HasAttachment => _containerId is not null && _ifName is not null;
    /// <summary>CNI_ARGS as key/value pairs, in order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Args { get; init; } = [];
    /// <summary>CNI_PATH split on ':'.</summary>
    public IReadOnlyList<string> PluginPaths { get; init; } = [];
    /// <summary>The whole environment, for delegating to another plugin.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();
    /// <summary>stdin as received.</summary>
    public required byte[] ConfigBytes { get; init; }
    /// <summary>stdin parsed once (the dispatcher hands over its parse): every reader of the configuration reads this.</summary>
    public CniConfigReader Root
    {
        get => _root ??= CniConfigReader.Parse(ConfigBytes);
        init => _root = value;
    }
    CniConfigReader? _root;
    /// <summary>The fields every network configuration has.</summary>
    public required NetworkConfig Config { get; init; }

    readonly ContainerId? _containerId;
    readonly InterfaceName? _ifName;
}

/// <summary>The spec's common keys; the plugin parses its own keys from ConfigBytes.</summary>
public sealed record NetworkConfig
{
    public required string CniVersion { get; init; }
    public required NetworkName Name { get; init; }
    public required string Type { get; init; }
    /// <summary>prevResult converted to the canonical shape, when present.</summary>
    public CniResult? PrevResult { get; init; }
    /// <summary>GC: cni.dev/valid-attachments (or the older cni.dev/attachments).</summary>
    public IReadOnlyList<GcAttachment>? ValidAttachments { get; init; }
}

public sealed record GcAttachment(string ContainerId, string IfName);

/// <summary>What a plugin implements; the dispatcher does parsing, validation, versions and error JSON.</summary>
public interface ICniPlugin
{
    CniResult Add(CniRequest request);
    void Delete(CniRequest request);
    void Check(CniRequest request);
    void Status(CniRequest request);
    void GarbageCollect(CniRequest request);
}
