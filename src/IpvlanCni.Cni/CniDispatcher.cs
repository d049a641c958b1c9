using System.Diagnostics;
using System.Text.Json;

namespace IpvlanCni.Cni;

/// <summary>
/// Everything between the process and an <see cref="ICniPlugin"/>: reads the environment and stdin, validates
/// them, checks versions, calls the plugin, writes the result in the request's version or the spec's error JSON.
/// The process's main passes its real environment and streams; tests pass a dictionary and MemoryStreams.
/// </summary>
public static class CniDispatcher
{
    /// <summary>Network configurations are a few KiB; anything near this is not one.</summary>
    public const int MaxStdinBytes = 1 << 20;
    /// <summary>PATH_MAX: CNI_NETNS is a path.</summary>
    public const int MaxNetnsPathLength = 4096;
    /// <summary>Bound for CNI_ARGS and CNI_PATH, far above any real value.</summary>
    public const int MaxListLength = 64 * 1024;

    public const string ValidAttachmentsKey = "cni.dev/valid-attachments";
    /// <summary>The key's name in pre-release 1.1.0 runtimes.</summary>
    public const string LegacyAttachmentsKey = "cni.dev/attachments";

    /// <summary>
    /// Runs one CNI command and returns the process exit code: 0 on success, 1 after writing an error object to
    /// <paramref name="stdout"/>. Never throws. For VERSION, stdin is read only to echo its cniVersion: a main
    /// started from a terminal should pass <see cref="Stream.Null"/> (when !Console.IsInputRedirected).
    /// </summary>
    public static int Run(ICniPlugin plugin, IReadOnlyDictionary<string, string> environment, Stream stdin, Stream stdout,
        CniLog? log = null)
    {
        var start = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        var context = new Context(environment);
        CniException? error = null;
        try
        {
            Dispatch(plugin, context, stdin, stdout);
        }
        catch (CniException e)
        {
            error = e;
        }
        catch (Exception e)
        {
            // Plugins should throw CniException; anything else is a bug we still report in the spec's shape, in words.
            error = CniException.FromUnexpected(e);
        }

        if (error is not null)
            TryWrite(stdout, CniErrorJson.Write(error, context.ResponseVersion));

        log?.Write(new CniLogEntry(start, context.CommandText, context.ContainerId, context.IfName, context.Network,
            clock.Elapsed, error));
        return error is null ? 0 : 1;
    }

    static void Dispatch(ICniPlugin plugin, Context context, Stream stdin, Stream stdout)
    {
        var command = ParseCommand(context.CommandText);
        if (command == CniCommand.Version)
        {
            WriteVersion(context, stdin, stdout);
            return;
        }

        var request = ParseRequest(command, context, stdin);
        switch (command)
        {
            case CniCommand.Add:
                var result = plugin.Add(request)
                    ?? throw new CniException(CniErrorCode.Internal, "the plugin returned no result for ADD");
                Write(stdout, CniResultJson.Write(result, request.Config.CniVersion));
                break;
            case CniCommand.Del:
                plugin.Delete(request);
                break;
            case CniCommand.Check:
                plugin.Check(request);
                break;
            case CniCommand.Status:
                plugin.Status(request);
                break;
            case CniCommand.Gc:
                plugin.GarbageCollect(request);
                break;
        }
    }

    static CniCommand ParseCommand(string text) => text switch
    {
        "ADD" => CniCommand.Add,
        "DEL" => CniCommand.Del,
        "CHECK" => CniCommand.Check,
        "STATUS" => CniCommand.Status,
        "GC" => CniCommand.Gc,
        "VERSION" => CniCommand.Version,
        "" => throw new CniException(CniErrorCode.InvalidEnvironment, "required environment variable CNI_COMMAND is missing"),
        _ => throw new CniException(CniErrorCode.InvalidEnvironment,
            $"CNI_COMMAND '{Truncate(text)}' is unknown", "expected ADD, DEL, CHECK, STATUS, GC or VERSION"),
    };

    /// <summary>Parses the environment and stdin into a request; public so the plugin's tests can build requests the same way.</summary>
    public static CniRequest ParseRequest(CniCommand command, IReadOnlyDictionary<string, string> environment, Stream stdin) =>
        ParseRequest(command, new Context(environment), stdin);

    static CniRequest ParseRequest(CniCommand command, Context context, Stream stdin)
    {
        var env = context.Environment;
        bool attachment = command is CniCommand.Add or CniCommand.Check or CniCommand.Del;
        ContainerId? containerId = null;
        InterfaceName? ifName = null;
        string netns = "";
        if (attachment)
        {
            string containerText = Env(env, "CNI_CONTAINERID");
            netns = Env(env, "CNI_NETNS");
            string ifText = Env(env, "CNI_IFNAME");
            context.ContainerId = containerText;
            context.IfName = ifText;

            // DEL must work after the namespace is gone, so CNI_NETNS may be empty there.
            var missing = new List<string>(3);
            if (containerText.Length == 0) missing.Add("CNI_CONTAINERID");
            if (netns.Length == 0 && command != CniCommand.Del) missing.Add("CNI_NETNS");
            if (ifText.Length == 0) missing.Add("CNI_IFNAME");
            if (missing.Count > 0)
                throw new CniException(CniErrorCode.InvalidEnvironment,
                    $"required environment variable{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing)} missing");

            containerId = ContainerId.Parse(containerText, "CNI_CONTAINERID", CniErrorCode.InvalidEnvironment);
            if (netns.Length > MaxNetnsPathLength || netns.Contains('\0'))
                throw new CniException(CniErrorCode.InvalidEnvironment,
                    $"CNI_NETNS is not a usable path (longer than {MaxNetnsPathLength} or contains NUL)", Truncate(netns));
            if (netns.Length > 0 && netns[0] != '/')
                throw new CniException(CniErrorCode.InvalidEnvironment, "CNI_NETNS is not an absolute path", Truncate(netns));
            ifName = InterfaceName.Parse(ifText, "CNI_IFNAME", CniErrorCode.InvalidEnvironment);
        }

        string argsText = Env(env, "CNI_ARGS");
        if (argsText.Length > MaxListLength)
            throw new CniException(CniErrorCode.InvalidEnvironment, $"CNI_ARGS is longer than {MaxListLength} characters");
        var args = CniArgs.Parse(argsText);

        string pathText = Env(env, "CNI_PATH");
        if (pathText.Length > MaxListLength)
            throw new CniException(CniErrorCode.InvalidEnvironment, $"CNI_PATH is longer than {MaxListLength} characters");
        string[] paths = pathText.Split(':', StringSplitOptions.RemoveEmptyEntries);

        byte[] bytes = ReadStdin(stdin);
        var config = ParseConfig(command, bytes, context);

        var request = new CniRequest
        {
            Command = command,
            NetnsPath = netns,
            Args = args,
            PluginPaths = paths,
            Environment = env,
            ConfigBytes = bytes,
            Config = config,
        };
        return attachment ? request with { ContainerId = containerId!, IfName = ifName! } : request;
    }

    static NetworkConfig ParseConfig(CniCommand command, byte[] bytes, Context context)
    {
        if (bytes.AsSpan().Trim(" \t\r\n"u8).IsEmpty)
            throw new CniException(CniErrorCode.DecodeFailure, "no network configuration on stdin");
        var root = CniConfigReader.Parse(bytes);

        string? version = root.GetString("cniVersion");
        if (CniVersions.IsSupported(version))
            context.ResponseVersion = version!;

        string? name = root.GetString("name");
        context.Network = name ?? "";
        if (string.IsNullOrEmpty(name))
            throw new CniException(CniErrorCode.InvalidNetworkConfig, "name is required in the network configuration");
        var networkName = NetworkName.Parse(name, "name");
        string type = root.GetString("type") ?? "";

        if (string.IsNullOrEmpty(version))
            throw new CniException(CniErrorCode.IncompatibleVersion,
                "incompatible CNI version: cniVersion is missing (which means 0.1.0)", SupportedList());
        if (!CniVersions.IsSupported(version))
            throw new CniException(CniErrorCode.IncompatibleVersion,
                $"incompatible CNI version: cniVersion '{Truncate(version)}' is not supported", SupportedList());
        string? minimum = command switch
        {
            CniCommand.Check => "0.4.0",
            CniCommand.Status or CniCommand.Gc => "1.1.0",
            _ => null,
        };
        if (minimum is not null && !CniVersions.AtLeast(version, minimum))
            throw new CniException(CniErrorCode.IncompatibleVersion,
                $"incompatible CNI version: {command.ToString().ToUpperInvariant()} needs cniVersion {minimum} or later, the configuration has {version}");

        // A prevResult without its own cniVersion is in the configuration's version (as the reference assumes).
        CniResult? prevResult = root.GetObject("prevResult") is CniConfigReader prev ? CniResultJson.Read(prev, version) : null;

        IReadOnlyList<GcAttachment>? attachments = null;
        if (command == CniCommand.Gc)
            attachments = ReadAttachments(root, ValidAttachmentsKey) ?? ReadAttachments(root, LegacyAttachmentsKey);

        return new NetworkConfig
        {
            CniVersion = version,
            Name = networkName,
            Type = type,
            PrevResult = prevResult,
            ValidAttachments = attachments,
        };
    }

    /// <summary>GC's list of attachments still in use; null when the key is absent (the plugin decides what that means).</summary>
    static List<GcAttachment>? ReadAttachments(CniConfigReader root, string key)
    {
        if (!root.TryGetValue(key, out var list))
            return null;
        return [.. list.AsArray().Select(item => new GcAttachment(item.GetRequiredString("containerID"), item.GetRequiredString("ifname")))];
    }

    static byte[] ReadStdin(Stream stdin)
    {
        try
        {
            using var buffer = new MemoryStream();
            // A network configuration is a few KiB: a bigger chunk only adds fresh pages to every invocation.
            var chunk = new byte[4 * 1024];
            int read;
            while ((read = stdin.Read(chunk, 0, chunk.Length)) > 0)
            {
                if (buffer.Length + read > MaxStdinBytes)
                    throw new CniException(CniErrorCode.DecodeFailure,
                        $"network configuration on stdin is larger than {MaxStdinBytes} bytes");
                buffer.Write(chunk, 0, read);
            }
            return buffer.ToArray();
        }
        catch (IOException e)
        {
            throw new CniException(CniErrorCode.IoFailure, "could not read the network configuration from stdin", e.Message, e);
        }
    }

    // The spec echoes the input's cniVersion; VERSION must answer even without (valid) input, so problems are ignored.
    static void WriteVersion(Context context, Stream stdin, Stream stdout)
    {
        try
        {
            var bytes = ReadStdin(stdin);
            if (!bytes.AsSpan().Trim(" \t\r\n"u8).IsEmpty &&
                CniConfigReader.Parse(bytes).GetString("cniVersion") is string v && CniVersions.IsSupported(v))
                context.ResponseVersion = v;
        }
        catch (CniException)
        {
        }

        // Go's json.Encoder: compact, one line, newline-terminated.
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = CniResultJson.WriterOptions.Encoder }))
        {
            w.WriteStartObject();
            w.WriteString("cniVersion", context.ResponseVersion);
            w.WriteStartArray("supportedVersions");
            foreach (var version in CniVersions.Supported)
                w.WriteStringValue(version);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        Write(stdout, buffer.ToArray());
    }

    static void Write(Stream stdout, byte[] bytes)
    {
        try
        {
            stdout.Write(bytes);
            stdout.Flush();
        }
        catch (IOException e)
        {
            throw new CniException(CniErrorCode.IoFailure, "could not write to stdout", e.Message, e);
        }
    }

    static void TryWrite(Stream stdout, byte[] bytes)
    {
        try
        {
            stdout.Write(bytes);
            stdout.Flush();
        }
        catch (Exception)
        {
            // Nowhere left to report it; the exit code and the log still say what happened.
        }
    }

    static string Env(IReadOnlyDictionary<string, string> env, string name) =>
        env.TryGetValue(name, out var value) && value is not null ? value : "";

    static string SupportedList() => $"supported versions: {string.Join(", ", CniVersions.Supported)}";

    /// <summary>Keeps hostile or huge values out of messages and logs.</summary>
    static string Truncate(string value) => CniNames.Truncate(value);

    /// <summary>What is known so far, for the error's cniVersion and the log line.</summary>
    sealed class Context(IReadOnlyDictionary<string, string> environment)
    {
        public IReadOnlyDictionary<string, string> Environment { get; } = environment;
        public string CommandText { get; } = Env(environment, "CNI_COMMAND");
        public string ResponseVersion { get; set; } = CniVersions.Latest;
        public string ContainerId { get; set; } = "";
        public string IfName { get; set; } = "";
        public string Network { get; set; } = "";
    }
}
