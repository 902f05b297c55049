using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace Billing.Testing;

/// <summary>The POSIX signals the tests send to a child (sent with <c>kill -SIG pid</c>).</summary>
public enum ChildSignal
{
    /// <summary>SIGINT, Ctrl-C: a graceful stop.</summary>
    Interrupt,

    /// <summary>SIGTERM: a graceful stop, as a supervisor asks for it.</summary>
    Terminate,

    /// <summary>SIGKILL: a crash, nothing runs after it.</summary>
    Kill,

    /// <summary>SIGSTOP: a frozen process (a long GC pause, a stalled VM); its sockets stay open.</summary>
    Stop,

    /// <summary>SIGCONT: thaws a stopped process.</summary>
    Continue,
}

/// <summary>
/// A process a test, the bank or the bench started (a silo, the gateway, <c>run.sh</c>, the token verb): its output
/// kept in memory and appended to a log file, killed with its whole process tree on dispose, by <see cref="KillAll"/>
/// and, failing both, when this process exits. No child outlives its run, whether it passed, failed or threw.
/// </summary>
public sealed class ChildProcess : IAsyncDisposable, IDisposable
{
    private static readonly ConcurrentDictionary<ChildProcess, byte> Running = new();

    /// <summary>Where logs go when the caller names no file.</summary>
    public static string DefaultLogDirectory { get; } = Path.Combine(Path.GetTempPath(), "billing-children");

    private readonly Process process;
    private readonly StringBuilder output = new();
    private readonly StreamWriter log;
    private readonly TaskCompletionSource exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    static ChildProcess()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
    }

    private ChildProcess(string name, Process process, string logPath)
    {
        Name = name;
        this.process = process;
        LogPath = logPath;
        Directory.CreateDirectory(Path.GetDirectoryName(logPath)!);
        // Appended: a restarted silo (the bank) keeps one log across its lives.
        log = new StreamWriter(new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
    }

    public string Name { get; }

    public int Pid => process.Id;

    public string LogPath { get; }

    public bool HasExited => process.HasExited;

    public int? ExitCode => process.HasExited ? process.ExitCode : null;

    /// <summary>Completes when the process exits.</summary>
    public Task Exited => exited.Task;

    /// <summary>Everything the process wrote to stdout and stderr so far, one line per line.</summary>
    public string Output
    {
        get
        {
            lock (output) return output.ToString();
        }
    }

    /// <summary>The last lines of the output, for assertion and exception messages.</summary>
    public string Tail(int lines = 40)
    {
        var all = Output.Split('\n');
        return $"--- {Name} (pid {Pid}{(HasExited ? $", exited {ExitCode}" : "")}), last {Math.Min(lines, all.Length)} lines of {LogPath} ---\n"
               + string.Join('\n', all.TakeLast(lines));
    }

    /// <summary>
    /// Starts <paramref name="fileName"/>. The child does not inherit the caller's environment name or URLs
    /// (DOTNET_ENVIRONMENT, ASPNETCORE_ENVIRONMENT, ASPNETCORE_URLS); <paramref name="environment"/> sets variables,
    /// a null value removes one. Its stdin is a closed pipe, so it never waits on the terminal.
    /// </summary>
    public static ChildProcess Start(string name, string fileName, IEnumerable<string> arguments, string workingDirectory,
        IEnumerable<KeyValuePair<string, string?>>? environment = null, string? logPath = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        info.Environment.Remove("ASPNETCORE_URLS");
        info.Environment.Remove("DOTNET_ENVIRONMENT");
        info.Environment.Remove("ASPNETCORE_ENVIRONMENT");
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (key, value) in environment ?? [])
        {
            if (value is null) info.Environment.Remove(key);
            else info.Environment[key] = value;
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        logPath ??= Path.Combine(DefaultLogDirectory, $"{DateTime.UtcNow:HHmmss}-{name}-{Guid.NewGuid():N}"[..40] + ".log");
        var child = new ChildProcess(name, process, logPath);
        process.OutputDataReceived += (_, e) => child.Append(e.Data);
        process.ErrorDataReceived += (_, e) => child.Append(e.Data);
        process.Exited += (_, _) =>
        {
            child.WriteLog($"=== {name} exited");
            child.exited.TrySetResult();
        };
        child.WriteLog($"=== {name}: starting {Path.GetFileName(fileName)} at {DateTimeOffset.UtcNow:O}");
        process.Start();
        Running[child] = 0;
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Starts <c>dotnet &lt;dll&gt; args</c> in the dll's folder; fails at once when the dll is not built.</summary>
    public static ChildProcess StartDotnet(string name, string dllPath, IEnumerable<string> arguments,
        IEnumerable<KeyValuePair<string, string?>>? environment = null, string? logPath = null)
    {
        if (!File.Exists(dllPath)) throw new FileNotFoundException($"{name}: {dllPath} not found (build it first: dotnet build -c Release)", dllPath);
        return Start(name, "dotnet", new[] { dllPath }.Concat(arguments), Path.GetDirectoryName(dllPath)!, environment, logPath);
    }

    /// <summary>Kills every child still running, each with its process tree (at exit, on SIGINT/SIGTERM of the caller).</summary>
    public static void KillAll()
    {
        foreach (var child in Running.Keys) child.Kill();
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (output)
        {
            output.Append(line).Append('\n');
        }

        WriteLog(line);
    }

    private void WriteLog(string line)
    {
        lock (log)
        {
            try
            {
                log.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
                // Output that arrives after dispose: still in memory, no longer in the file.
            }
        }
    }

    /// <summary>Waits until the output contains <paramref name="text"/>; fails at once when the process exits first.</summary>
    public async Task WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (Output.Contains(text, StringComparison.Ordinal)) return;
            if (HasExited) throw new InvalidOperationException($"{Name} exited before printing '{text}'.\n{Tail()}");
            await Task.Delay(200);
        }

        throw new TimeoutException($"{Name} did not print '{text}' within {timeout}.\n{Tail()}");
    }

    /// <summary>True when the process exited within <paramref name="timeout"/> (its output then fully read).</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        var finished = await Task.WhenAny(exited.Task, Task.Delay(timeout));
        if (finished != exited.Task) return false;
        await process.WaitForExitAsync(); // drains the output
        return true;
    }

    /// <summary>Sends a POSIX signal to the process itself (not its children).</summary>
    public void Signal(ChildSignal signal)
    {
        var name = signal switch
        {
            ChildSignal.Interrupt => "INT",
            ChildSignal.Terminate => "TERM",
            ChildSignal.Kill => "KILL",
            ChildSignal.Stop => "STOP",
            ChildSignal.Continue => "CONT",
            _ => throw new ArgumentOutOfRangeException(nameof(signal), signal, null),
        };
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{name} {process.Id}") { UseShellExecute = false })!;
        kill.WaitForExit();
    }

    /// <summary>SIGKILL (a crash), of the whole process tree unless told otherwise; returns once the process is gone.</summary>
    public void Kill(bool entireProcessTree = true)
    {
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree);
            process.WaitForExit(10_000);
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // Already gone, or never started.
        }
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        await WaitForExitAsync(TimeSpan.FromSeconds(10));
        Release();
    }

    public void Dispose()
    {
        Kill();
        Release();
    }

    private void Release()
    {
        Running.TryRemove(this, out _);
        lock (log) log.Dispose();
        process.Dispose();
    }
}
