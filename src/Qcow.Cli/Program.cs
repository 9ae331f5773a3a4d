using System.CommandLine;
using Qcow.Cli;

TestPause.Install();
return QcowCommand.Run(args);
