; Inno Setup script for Semantic Studio on Windows (x64). Built from the same PyInstaller one-folder bundle
; as Linux (packaging/semstudio.spec -> dist\semstudio). NOT TESTED ON WINDOWS: no Windows machine was
; available where this was written; see packaging/README.md and .github/workflows/windows.yml.
;
;   iscc /DAppVersion=0.1.0 /DVariant=cpu packaging\windows\semstudio.iss
;
; Needs dist\semstudio (pyinstaller) and packaging\windows\vc_redist.x64.exe (the Microsoft Visual C++
; 2015-2022 x64 redistributable, which torch needs; the CI workflow fetches it at build time).

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef Variant
  #define Variant "cpu"
#endif

[Setup]
AppId={{6B0F3C1E-58C2-4F3B-9A8E-2E7A4C9D1F55}
AppName=Semantic Studio
AppVersion={#AppVersion}
AppPublisher=Semantic Studio
DefaultDirName={autopf}\Semantic Studio
DefaultGroupName=Semantic Studio
; per-user (no admin) or all-users: the installer asks
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
ChangesAssociations=yes
OutputDir=..\..\dist\packages
OutputBaseFilename=SemanticStudio-{#AppVersion}-windows-x64-{#Variant}-setup
SetupIconFile=..\semstudio.ico
UninstallDisplayIcon={app}\SemanticStudio.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
LicenseFile=..\linux\copyright

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "association"; Description: "Open .semstudio projects with Semantic Studio"; GroupDescription: "File types:"

[Files]
Source: "..\..\dist\semstudio\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs
Source: "vc_redist.x64.exe"; DestDir: "{tmp}"; Flags: deleteafterinstall; Check: VCRedistNeeded

[Icons]
Name: "{group}\Semantic Studio"; Filename: "{app}\SemanticStudio.exe"
Name: "{group}\Uninstall Semantic Studio"; Filename: "{uninstallexe}"
Name: "{autodesktop}\Semantic Studio"; Filename: "{app}\SemanticStudio.exe"; Tasks: desktopicon

[Registry]
; HKA = HKCU for a per-user install, HKLM for all users
Root: HKA; Subkey: "Software\Classes\.semstudio"; ValueType: string; ValueName: ""; ValueData: "SemanticStudio.Project"; Flags: uninsdeletevalue; Tasks: association
Root: HKA; Subkey: "Software\Classes\SemanticStudio.Project"; ValueType: string; ValueName: ""; ValueData: "Semantic Studio project"; Flags: uninsdeletekey; Tasks: association
Root: HKA; Subkey: "Software\Classes\SemanticStudio.Project\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\SemanticStudio.exe,0"; Tasks: association
Root: HKA; Subkey: "Software\Classes\SemanticStudio.Project\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\SemanticStudio.exe"" ""%1"""; Tasks: association

[Run]
Filename: "{tmp}\vc_redist.x64.exe"; Parameters: "/install /quiet /norestart"; StatusMsg: "Installing the Visual C++ runtime (needed by torch)..."; Check: VCRedistNeeded; Flags: waituntilterminated
Filename: "{app}\SemanticStudio.exe"; Description: "{cm:LaunchProgram,Semantic Studio}"; Flags: nowait postinstall skipifsilent

[Code]
function VCRedistNeeded: Boolean;
var
  Installed: Cardinal;
begin
  Result := not (RegQueryDWordValue(HKLM64, 'SOFTWARE\Microsoft\VisualStudio\14.0\VC\Runtimes\x64', 'Installed', Installed)
                 and (Installed = 1));
end;

{ Your models, settings and autosaves live in %LOCALAPPDATA%\SemanticStudio (platformdirs). The
  uninstaller keeps them unless you say otherwise; a silent uninstall always keeps them. }
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  UserDir: String;
begin
  if CurUninstallStep = usPostUninstall then
  begin
    UserDir := ExpandConstant('{localappdata}\SemanticStudio');
    if DirExists(UserDir) and not UninstallSilent then
      if MsgBox('Also delete your imported models, settings and autosaves in ' + UserDir + '?' + #13#10 +
                'Choose No to keep them for a later install.', mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES then
        DelTree(UserDir, True, True, True);
  end;
end;
