using System.Text;
using System.Text.Json;
using IpvlanCni.Cni;

namespace IpvlanCni.Agent;

/// <summary>
/// The agent's wire format on its unix stream socket: one request per connection, one line of JSON each way.
/// <code>
/// → {"service":"dhcp","op":"add","args":{"network":"net1","containerId":"c1","ifName":"eth0","netns":"/run/netns/p1"}}
/// ← {"ok":true,"result":{...}}          or          ← {"ok":false,"code":11,"msg":"..."}
/// </code>
/// Codes and messages are CNI's, so the plugin passes an agent's refusal on unchanged.
/// </summary>
public static class AgentProtocol
{
    public const string DefaultSocketPath = "/run/ipvlan-cni/agent.sock";
    /// <summary>A request larger than this is refused unread: every request is a few hundred bytes.</summary>
    public const int MaxRequestBytes = 64 * 1024;
    /// <summary>A response (a lease as a CNI result) is smaller still; the client reads at most this.</summary>
    public const int MaxResponseBytes = 64 * 1024;

    public static byte[] Request(string service, string op, Action<Utf8JsonWriter> writeArgs)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("service", service);
            w.WriteString("op", op);
            w.WritePropertyName("args");
            w.WriteStartObject();
            writeArgs(w);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    public static byte[] Success(Action<Utf8JsonWriter>? writeResult)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteBoolean("ok", true);
            if (writeResult is not null)
            {
                w.WritePropertyName("result");
                writeResult(w);
            }
            w.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    public static byte[] Failure(int code, string message)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteBoolean("ok", false);
            w.WriteNumber("code", code);
            w.WriteString("msg", message);
            w.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    /// <summary>A response line: its result (null when it carries none), or the agent's refusal as a CniException.</summary>
    public static JsonElement? ReadResponse(ReadOnlyMemory<byte> line)
    {
        var root = CniConfigReader.Parse(line, "agent response");
        if (root.GetBoolean("ok") == true)
            return root.TryGetValue("result", out var result) ? result.Element : null;
        // The agent is ours: a code outside the spec's 1..999 is a broken answer, not a refusal to relay.
        long code = root.GetInt64("code") ?? CniErrorCode.Internal;
        if (code is < 1 or > 999)
            throw new CniException(CniErrorCode.IpamPluginFailed,
                $"agent response: code is {code}, outside the CNI range 1..999: the agent's answer is broken");
        throw new CniException((int)code, root.GetString("msg") ?? "the agent refused the request without a reason");
    }
}

/// <summary>A parsed request: the service it names, the operation, and its arguments for the service to read.</summary>
public sealed record AgentRequest(string Service, string Op, CniConfigReader Args)
{
    public static AgentRequest Parse(ReadOnlyMemory<byte> line)
    {
        var root = CniConfigReader.Parse(line, "request");
        string service = root.GetString("service") is { Length: > 0 } s ? s : throw new CniException(CniErrorCode.InvalidNetworkConfig, "request: service missing");
        string op = root.GetString("op") is { Length: > 0 } o ? o : throw new CniException(CniErrorCode.InvalidNetworkConfig, "request: op missing");
        var args = root.GetObject("args") ?? new CniConfigReader(JsonDocument.Parse("{}").RootElement.Clone(), "args");
        return new AgentRequest(service, op, args);
    }

    public override string ToString() => $"{Service}.{Op}";
}

/// <summary>One of the agent's services (DHCP today; cluster IPAM, metrics, GC later): it owns its own state and threads.</summary>
public interface IAgentService : IDisposable
{
    /// <summary>The "service" value requests name.</summary>
    string Name { get; }

    /// <summary>Starts background work (timers, loops); called once before the socket accepts.</summary>
    void Start();

    /// <summary>
    /// Answers one request before <paramref name="deadline"/> (the service must give up by then): a writer for the
    /// result, or a CniException with the code and message to send back.
    /// </summary>
    Action<Utf8JsonWriter>? Handle(AgentRequest request, DateTimeOffset deadline, CancellationToken stopping);

    /// <summary>One line for the agent's status answer.</summary>
    string Describe();
}

/// <summary>The agent's own answers: "agent.ping" (is it up, what runs).</summary>
sealed class AgentSelfService(Func<IReadOnlyList<IAgentService>> services) : IAgentService
{
    public string Name => "agent";

    public void Start() { }

    public Action<Utf8JsonWriter>? Handle(AgentRequest request, DateTimeOffset deadline, CancellationToken stopping) => request.Op switch
    {
        "ping" => w =>
        {
            w.WriteStartObject();
            w.WriteNumber("pid", Environment.ProcessId);
            w.WriteStartArray("services");
            foreach (var s in services())
                w.WriteStringValue($"{s.Name}: {s.Describe()}");
            w.WriteEndArray();
            w.WriteEndObject();
        },
        _ => throw new CniException(CniErrorCode.InvalidNetworkConfig, $"agent: unknown op \"{request.Op}\""),
    };

    public string Describe() => "up";

    public void Dispose() { }
}

/// <summary>One line per event, to a file (appended) or to stdout (the journal, under systemd).</summary>
public sealed class AgentLog : IDisposable
{
    readonly Stream _stream;
    readonly Lock _gate = new();

    public AgentLog(string? path)
    {
        if (path is null)
            _stream = Console.OpenStandardOutput();
        else
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            _stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        }
    }

    public void Write(string message)
    {
        // One event, one line: a newline inside a message (an exception's text) would split it.
        var line = Encoding.UTF8.GetBytes($"{DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {message.ReplaceLineEndings(" ")}\n");
        lock (_gate)
        {
            _stream.Write(line);
            _stream.Flush();
        }
    }

    public void Dispose() => _stream.Dispose();
}
