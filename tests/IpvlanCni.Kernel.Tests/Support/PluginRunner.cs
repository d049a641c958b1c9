using System.Text.Json;
using System.Text.Json.Nodes;

namespace IpvlanCni.Kernel.Tests.Support;

/// <summary>
/// Calls the published plugin exactly as a container runtime does: a process in the node's namespace, the CNI_*
/// variables in a clean environment, the network configuration on stdin. Each node gets its own state and IPAM
/// folders, so tests sharing one sandbox boot never share plugin state.
/// <code>
/// var cni = new PluginRunner(node);
/// var config = cni.Config("net1", "10.10.0.0/24");          // ipvlan-cni, l2, host-local, this node's folders
/// var added = cni.Add(config, pod, "c1").Succeeded();       // CniCall with .Json, .ErrorCode
/// cni.Del(config, pod, "c1").Succeeded();
/// </code>
/// </summary>
public sealed class PluginRunner(TestNode node)
{
    static readonly Lazy<string> Binary = new(Locate);

    /// <summary>artifacts/cni/bin/ipvlan-cni, as `make` publishes it (IPVLANCNI_PLUGIN names it in the sandbox).</summary>
    public static string PluginPath => Binary.Value;
    public static string PluginDirectory => Path.GetDirectoryName(PluginPath)!;
    /// <summary>CNI_PATH: ours first, then Debian's reference plugins.</summary>
    public static string CniPath => $"{PluginDirectory}:/usr/lib/cni";

    public TestNode Node { get; } = node;
    public string StateDir => $"/tmp/{Node.Name}/state";
    public string DataDir => $"/tmp/{Node.Name}/ipam";

    /// <summary>An ipvlan-cni network with host-local IPAM and a default route, in this node's folders; edit freely.</summary>
    public JsonObject Config(string network, string subnet, string mode = "l2", string cniVersion = "1.1.0") => new()
    {
        ["cniVersion"] = cniVersion,
        ["name"] = network,
        ["type"] = "ipvlan-cni",
        ["master"] = Node.MasterName,
        ["mode"] = mode,
        ["stateDir"] = StateDir,
        ["ipam"] = new JsonObject
        {
            ["type"] = "host-local",
            ["subnet"] = subnet,
            ["dataDir"] = DataDir,
            ["routes"] = new JsonArray(new JsonObject { ["dst"] = subnet.Contains(':') ? "::/0" : "0.0.0.0/0" }),
        },
    };

    public CniCall Add(JsonNode config, TestPod pod, string containerId, string ifName = "eth0", IReadOnlyDictionary<string, string>? env = null) =>
        Run("ADD", config, containerId, pod.Path, ifName, env);

    public CniCall Del(JsonNode config, TestPod? pod, string containerId, string ifName = "eth0", IReadOnlyDictionary<string, string>? env = null) =>
        Run("DEL", config, containerId, pod?.Path ?? "", ifName, env);

    /// <summary>CHECK with prevResult set to an ADD's result, as a runtime does.</summary>
    public CniCall Check(JsonNode config, TestPod pod, string containerId, CniCall added, string ifName = "eth0") =>
        Run("CHECK", WithPrevResult(config, added), containerId, pod.Path, ifName);

    public CniCall Status(JsonNode config) => Run("STATUS", config, "", "", "");

    /// <summary>GC keeping only these (containerID, ifname) attachments.</summary>
    public CniCall Gc(JsonNode config, params (string ContainerId, string IfName)[] keep)
    {
        var withList = config.DeepClone();
        withList["cni.dev/valid-attachments"] = new JsonArray(keep
            .Select(a => (JsonNode)new JsonObject { ["containerID"] = a.ContainerId, ["ifname"] = a.IfName }).ToArray());
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
        return RunRaw(Node, environment, stdin ?? config.ToJsonString(), plugin);
    }

    /// <summary>The plugin with exactly this environment and stdin (for malformed requests).</summary>
    public static CniCall RunRaw(TestNode node, IReadOnlyDictionary<string, string> environment, string stdin, string? plugin = null)
    {
        var result = NamespaceProcess.Run(node.Namespace, plugin ?? PluginPath, [], environment, stdin, inheritEnvironment: false,
            timeout: TimeSpan.FromSeconds(60));
        return new CniCall(result.ExitCode, result.StdOut, result.StdErr);
    }

    /// <summary>The plugin with this environment and stdin, SIGKILLed <paramref name="killAfter"/> after it started (unless done by then).</summary>
    public static CniCall RunRawAndKill(TestNode node, IReadOnlyDictionary<string, string> environment, string stdin, TimeSpan killAfter)
    {
        var result = NamespaceProcess.RunAndKill(node.Namespace, PluginPath, [], killAfter, environment, stdin, inheritEnvironment: false);
        return new CniCall(result.ExitCode, result.StdOut, result.StdErr);
    }

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

/// <summary>One plugin run: exit code, stdout (result or error JSON), stderr.</summary>
public sealed record CniCall(int ExitCode, string StdOut, string StdErr)
{
    public JsonElement Json => JsonDocument.Parse(StdOut).RootElement;

    /// <summary>The spec error's code, null on success.</summary>
    public int? ErrorCode => ExitCode != 0 && StdOut.Length > 0 && Json.TryGetProperty("code", out var code) ? code.GetInt32() : null;
    public string ErrorMessage => ExitCode != 0 && StdOut.Length > 0 && Json.TryGetProperty("msg", out var msg) ? msg.GetString() ?? "" : "";

    /// <summary>Asserts success and returns this call, for chaining.</summary>
    public CniCall Succeeded()
    {
        Assert.True(ExitCode == 0, $"plugin failed: {this}");
        return this;
    }

    /// <summary>Asserts the spec's error JSON with this code, and returns the message.</summary>
    public string FailedWith(int code)
    {
        Assert.True(ExitCode != 0, $"plugin succeeded but should have failed with code {code}: {this}");
        Assert.True(ErrorCode == code, $"expected error code {code}: {this}");
        return ErrorMessage;
    }

    public override string ToString() => $"exit {ExitCode}\nstdout: {StdOut}\nstderr: {StdErr}";
}
