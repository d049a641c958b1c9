using System.Text.Json;
using System.Text.Json.Nodes;
using IpvlanCni.Network;

namespace IpvlanCni.Scenarios;

/// <summary>One plugin run: exit code, stdout (result or error JSON), stderr.</summary>
public sealed record CniCall(int ExitCode, string StdOut, string StdErr)
{
    public JsonElement Json => JsonDocument.Parse(StdOut).RootElement;

    /// <summary>The spec error's code, null on success.</summary>
    public int? ErrorCode => ExitCode != 0 && StdOut.Length > 0 && Json.TryGetProperty("code", out var code) ? code.GetInt32() : null;
    public string ErrorMessage => ExitCode != 0 && StdOut.Length > 0 && Json.TryGetProperty("msg", out var msg) ? msg.GetString() ?? "" : "";

    /// <summary>Pod addresses of an ADD result ("10.1.0.5/24").</summary>
    public IReadOnlyList<IpPrefix> Addresses => Json.TryGetProperty("ips", out var ips)
        ? [.. ips.EnumerateArray().Select(ip => IpPrefix.Parse(ip.GetProperty("address").GetString()!))]
        : [];

    /// <summary>Throws with the plugin's output unless it succeeded; returns this call for chaining.</summary>
    /// <param name="what">The call, for the message ("ADD c1").</param>
    public CniCall Succeeded(string what = "plugin")
    {
        if (ExitCode != 0)
            throw new CniCallException($"{what} failed: {this}");
        return this;
    }

    /// <summary>Throws unless the plugin failed with the spec's error JSON carrying this code; returns the message.</summary>
    public string FailedWith(int code)
    {
        if (ExitCode == 0)
            throw new CniCallException($"plugin succeeded but should have failed with code {code}: {this}");
        if (ErrorCode != code)
            throw new CniCallException($"expected error code {code}: {this}");
        return ErrorMessage;
    }

    public override string ToString() => $"exit {ExitCode}\nstdout: {StdOut}\nstderr: {StdErr}";
}

/// <summary>A plugin call did not end as its caller required.</summary>
public sealed class CniCallException(string message) : Exception(message);

/// <summary>A pod as a runtime knows it: the path it passes as CNI_NETNS.</summary>
public interface IPodNamespace
{
    string Path { get; }
}

/// <summary>
/// Calls the published plugin exactly as a container runtime does: a process in the node's namespace, the CNI_*
/// variables in an otherwise empty environment, the network configuration on stdin.
/// <code>
/// var cni = new CniRuntime(nodeNamespace);
/// var added = cni.Add(config, pod, "c1").Succeeded();     // CniCall with .Json, .Addresses, .ErrorCode
/// cni.Del(config, pod, "c1").Succeeded();
/// </code>
/// </summary>
public class CniRuntime(NetNamespace node)
{
    static readonly Lazy<string> Binary = new(Locate);
    static readonly Lazy<string> FaultBinary = new(LocateFaultBuild);

    /// <summary>The variable only the test build of the plugin obeys (the shipped one has no fault points).</summary>
    public const string FaultVariable = "IPVLAN_CNI_FAULT";

    /// <summary>artifacts/cni/bin/ipvlan-cni as `make publish` leaves it; IPVLANCNI_PLUGIN names it in the sandbox.</summary>
    public static string PluginPath => Binary.Value;
    /// <summary>artifacts/test/bin/ipvlan-cni: the same plugin built with fault points (IPVLANCNI_FAULT_PLUGIN in the sandbox).</summary>
    public static string FaultPluginPath => FaultBinary.Value;
    public static string PluginDirectory => Path.GetDirectoryName(PluginPath)!;
    /// <summary>CNI_PATH: ours first, then Debian's reference plugins.</summary>
    public static string CniPath => $"{PluginDirectory}:/usr/lib/cni";

    /// <summary>The namespace the plugin runs in, as the runtime's own.</summary>
    public NetNamespace NodeNamespace { get; } = node;

    public CniCall Add(JsonNode config, IPodNamespace pod, string containerId, string ifName = "eth0", IReadOnlyDictionary<string, string>? env = null) =>
        Run("ADD", config, containerId, pod.Path, ifName, env);

    /// <param name="pod">null: DEL without CNI_NETNS, as a runtime sends when the namespace is gone.</param>
    public CniCall Del(JsonNode config, IPodNamespace? pod, string containerId, string ifName = "eth0", IReadOnlyDictionary<string, string>? env = null) =>
        Run("DEL", config, containerId, pod?.Path ?? "", ifName, env);

    /// <summary>CHECK with prevResult set to an ADD's result, as a runtime does.</summary>
    public CniCall Check(JsonNode config, IPodNamespace pod, string containerId, CniCall added, string ifName = "eth0") =>
        Run("CHECK", WithPrevResult(config, added), containerId, pod.Path, ifName);

    public CniCall Status(JsonNode config) => Run("STATUS", config, "", "", "");

    /// <summary>GC keeping only these (containerID, ifname) attachments.</summary>
    public CniCall Gc(JsonNode config, params (string ContainerId, string IfName)[] keep)
    {
        var withList = config.DeepClone();
        withList["cni.dev/valid-attachments"] = new JsonArray([.. keep
            .Select(a => (JsonNode)new JsonObject { ["containerID"] = a.ContainerId, ["ifname"] = a.IfName })]);
        return Run("GC", withList, "", "", "");
    }

    public static JsonNode WithPrevResult(JsonNode config, CniCall added)
    {
        var copy = config.DeepClone();
        copy["prevResult"] = JsonNode.Parse(added.StdOut);
        return copy;
    }

    /// <summary>Any command, with any environment: the plugin sees only what is passed here.</summary>
    /// <param name="plugin">Another plugin binary (Debian's reference ipvlan, say); ours by default.</param>
    public CniCall Run(string command, JsonNode config, string containerId, string netns, string ifName,
        IReadOnlyDictionary<string, string>? env = null, string? stdin = null, string? plugin = null)
    {
        var environment = Environment(command, containerId, netns, ifName);
        foreach (var (key, value) in env ?? new Dictionary<string, string>())
            environment[key] = value;
        return RunRaw(environment, stdin ?? config.ToJsonString(), plugin);
    }

    /// <summary>The plugin with exactly this environment and stdin (for malformed requests).</summary>
    public CniCall RunRaw(IReadOnlyDictionary<string, string> environment, string stdin, string? plugin = null) =>
        Outcome(Programs.Run(NodeNamespace, plugin ?? Choose(environment), [], environment, stdin, inheritEnvironment: false));

    /// <summary>A call that asks for a fault runs the test build; every other call runs the shipped binary.</summary>
    static string Choose(IReadOnlyDictionary<string, string> environment) =>
        environment.ContainsKey(FaultVariable) ? FaultPluginPath : PluginPath;

    /// <summary>The plugin with this environment and stdin, SIGKILLed <paramref name="killAfter"/> after it started (unless done by then).</summary>
    public CniCall RunRawAndKill(IReadOnlyDictionary<string, string> environment, string stdin, TimeSpan killAfter) =>
        Outcome(Programs.RunAndKill(NodeNamespace, Choose(environment), [], killAfter, environment, stdin, inheritEnvironment: false));

    static CniCall Outcome(ProgramResult result) => new(result.ExitCode, result.StdOut, result.StdErr);

    /// <summary>The environment <see cref="Run"/> passes, for callers that edit it before <see cref="RunRaw"/>.</summary>
    public static Dictionary<string, string> Environment(string command, string containerId, string netns, string ifName) => new()
    {
        ["CNI_COMMAND"] = command,
        ["CNI_CONTAINERID"] = containerId,
        ["CNI_NETNS"] = netns,
        ["CNI_IFNAME"] = ifName,
        ["CNI_PATH"] = CniPath,
        ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin",
    };

    static string LocateFaultBuild()
    {
        if (System.Environment.GetEnvironmentVariable("IPVLANCNI_FAULT_PLUGIN") is { Length: > 0 } configured)
            return File.Exists(configured) ? configured : throw new FileNotFoundException($"IPVLANCNI_FAULT_PLUGIN={configured} does not exist; run make");
        string beside = Path.Combine(PluginDirectory, "..", "..", "test", "bin", "ipvlan-cni");
        return File.Exists(beside) ? Path.GetFullPath(beside)
            : throw new FileNotFoundException("artifacts/test/bin/ipvlan-cni (the fault-enabled test build) not found: run make");
    }

    static string Locate()
    {
        if (System.Environment.GetEnvironmentVariable("IPVLANCNI_PLUGIN") is { Length: > 0 } configured)
            return File.Exists(configured) ? configured : throw new FileNotFoundException($"IPVLANCNI_PLUGIN={configured} does not exist; run make");
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "artifacts", "cni", "bin", "ipvlan-cni");
            if (File.Exists(candidate))
                return candidate;
        }
        throw new FileNotFoundException("artifacts/cni/bin/ipvlan-cni not found: run make (or make publish) first");
    }
}
