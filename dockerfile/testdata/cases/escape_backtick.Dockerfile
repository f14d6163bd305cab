# escape=`
FROM mcr.microsoft.com/windows/servercore:ltsc2022
WORKDIR c:\app
COPY . c:\app\
RUN dir c:\ `
    && echo done
ENV P=c:\app`\bin
